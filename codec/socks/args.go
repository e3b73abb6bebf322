package socks

import (
	"context"
	"errors"
	"os"
	"syscall"

	"github.com/ptreactor/ptreactor/codec"
)

// ErrArgs is returned by ParseArgs for a string that is not a k=v;k=v list.
var ErrArgs = errors.New("socks: malformed transport arguments")

// ParseArgs parses the per-connection argument string of pt-spec 3.5: k=v items joined by
// ';', with '\' escaping the next byte. A key runs to the first unescaped '=', a value to the
// next unescaped ';', so a value may hold raw '=' (tor does not escape it). A key may repeat.
// Keys must not be empty; the string must not end in ';' or in a lone '\'. A '\' before an
// ordinary byte yields that byte, as goptlib does (lyrebird refuses it; tor never sends it).
func ParseArgs(s string) (codec.Args, error) {
	args := codec.Args{}
	if s == "" {
		return args, nil
	}
	var buf []byte
	i := 0
	for {
		// Key.
		buf = buf[:0]
		for {
			if i >= len(s) {
				return nil, ErrArgs // a key with no '='
			}
			c := s[i]
			i++
			if c == '\\' {
				if i >= len(s) {
					return nil, ErrArgs
				}
				buf = append(buf, s[i])
				i++
				continue
			}
			if c == ';' {
				return nil, ErrArgs
			}
			if c == '=' {
				break
			}
			buf = append(buf, c)
		}
		if len(buf) == 0 {
			return nil, ErrArgs
		}
		key := string(buf)
		// Value.
		buf = buf[:0]
		more := false
		for i < len(s) {
			c := s[i]
			i++
			if c == '\\' {
				if i >= len(s) {
					return nil, ErrArgs
				}
				buf = append(buf, s[i])
				i++
				continue
			}
			if c == ';' {
				more = true
				break
			}
			buf = append(buf, c)
		}
		args.Add(key, string(buf))
		if !more {
			return args, nil
		}
		if i >= len(s) {
			return nil, ErrArgs // trailing ';'
		}
	}
}

// ReplyCode maps the error of a failed connection to the bridge to the reply code tor is
// sent, the way lyrebird maps them, so tor's log names the real cause. Invalid transport
// arguments and anything unrecognised are a general failure.
func ReplyCode(err error) byte {
	switch {
	case err == nil:
		return Succeeded
	case errors.Is(err, codec.ErrBadArgs):
		return GeneralFailure
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return ConnectionRefused
	case errors.Is(err, syscall.ENETUNREACH):
		return NetworkUnreachable
	case errors.Is(err, syscall.EHOSTUNREACH):
		return HostUnreachable
	case errors.Is(err, syscall.ETIMEDOUT), errors.Is(err, os.ErrDeadlineExceeded),
		errors.Is(err, context.DeadlineExceeded):
		return TTLExpired
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return AddrTypeNotSupp
	}
	return GeneralFailure
}
