package harness

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// ObfsArgs is the per-connection argument string tor builds from a bridge line's obfs4
// options: "cert=<cert>;iat-mode=<n>".
func ObfsArgs(cert string, iatMode int) string {
	return "cert=" + EscapeSOCKSArg(cert) + ";iat-mode=" + strconv.Itoa(iatMode)
}

// EscapeSOCKSArg escapes a value the way tor does for the SOCKS username: only ';' and '\'.
func EscapeSOCKSArg(v string) string {
	if !strings.ContainsAny(v, ";\\") {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == ';' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// SplitSOCKSArgs splits an argument string into the RFC 1929 username and password the way
// tor does: the first 255 bytes go in the username, the rest in the password, and a
// password that would be empty is a single NUL byte.
func SplitSOCKSArgs(args string) (user, pass []byte) {
	if len(args) <= 255 {
		return []byte(args), []byte{0}
	}
	return []byte(args[:255]), []byte(args[255:])
}

// SOCKSError is a SOCKS5 reply other than success; Code is the REP field.
type SOCKSError struct{ Code byte }

func (e *SOCKSError) Error() string { return fmt.Sprintf("socks5 reply %#02x", e.Code) }

// DialSOCKS opens a tunnel to target (host:port) through the SOCKS5 listener at proxy,
// passing args (empty: no authentication) as tor does. The context bounds the connect and
// the SOCKS exchange; the returned conn carries the tunnel's bytes once the proxy has
// granted the request, with no deadline set. A refusal is a *SOCKSError.
func DialSOCKS(ctx context.Context, proxy, target, args string) (net.Conn, error) {
	// No TCP keep-alive: the SOCKS listener is a PT on this machine, as tor's is, and
	// turning it on costs four setsockopt calls per connection, which a load generator
	// making thousands of set-ups a second pays on the cores the PTs are measured on.
	d := net.Dialer{KeepAlive: -1}
	c, err := d.DialContext(ctx, "tcp", proxy)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	// A context cancelled during the exchange unblocks it.
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	err = socksHandshake(c, target, args)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// socksHandshake performs the client side of RFC 1928, with RFC 1929 carrying args when
// they are set. Like tor, it offers "no authentication" and username/password when it has
// arguments, and needs the proxy to choose the latter.
func socksHandshake(c net.Conn, target, args string) error {
	host, portStr, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return fmt.Errorf("target port %q: %w", portStr, err)
	}
	greeting, method := []byte{5, 1, 0}, byte(0x00)
	if args != "" {
		greeting, method = []byte{5, 2, 0, 2}, 0x02
	}
	if _, err := c.Write(greeting); err != nil {
		return err
	}
	var rep [2]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return fmt.Errorf("socks method reply: %w", err)
	}
	if rep[0] != 5 || rep[1] != method {
		return fmt.Errorf("socks method reply %x, want method %d", rep, method)
	}
	if method == 0x02 {
		user, pass := SplitSOCKSArgs(args)
		msg := []byte{1, byte(len(user))}
		msg = append(msg, user...)
		msg = append(msg, byte(len(pass)))
		msg = append(msg, pass...)
		if _, err := c.Write(msg); err != nil {
			return err
		}
		if _, err := io.ReadFull(c, rep[:]); err != nil {
			return fmt.Errorf("socks auth reply: %w", err)
		}
		if rep[1] != 0 {
			return fmt.Errorf("socks auth refused: %x", rep)
		}
	}
	req := []byte{5, 1, 0}
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil {
		req = append(req, 1)
		req = append(req, ip.To4()...)
	} else if ip != nil {
		req = append(req, 4)
		req = append(req, ip.To16()...)
	} else {
		if len(host) > 255 {
			return fmt.Errorf("target host name of %d bytes", len(host))
		}
		req = append(req, 3, byte(len(host)))
		req = append(req, host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	var hdr [4]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return fmt.Errorf("socks connect reply: %w", err)
	}
	if hdr[0] != 5 {
		return errors.New("socks connect reply: bad version")
	}
	if hdr[1] != 0 {
		return &SOCKSError{Code: hdr[1]}
	}
	var skip int
	switch hdr[3] {
	case 1:
		skip = 4 + 2
	case 4:
		skip = 16 + 2
	case 3:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return fmt.Errorf("socks connect reply: %w", err)
		}
		skip = int(l[0]) + 2
	default:
		return fmt.Errorf("socks connect reply: address type %d", hdr[3])
	}
	var bound [257]byte
	if _, err := io.ReadFull(c, bound[:skip]); err != nil {
		return fmt.Errorf("socks connect reply: %w", err)
	}
	return nil
}
