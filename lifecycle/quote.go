package lifecycle

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ptreactor/ptreactor/codec"
)

// This file holds the three escaping schemes of the conversation with the parent:
//
//   - CString, the quoted form of LOG and STATUS values;
//   - SMETHOD ARGS, k=v pairs joined by ',' with '\', '=' and ',' backslash-escaped;
//   - TOR_PT_SERVER_TRANSPORT_OPTIONS, transport:k=v items joined by ';', where tor escapes
//     '\', ':' and ';' (but not '=') and a value may hold a raw '='.

// replacement stands in for what a line to the parent cannot carry: a control character
// or a byte that is not UTF-8. It is U+FFFD, the character Go and Rust decoders put in
// place of invalid UTF-8.
const replacement = "\uFFFD"

// appendCString appends s as a double-quoted CString that both parents read back as the
// same text. tor reads C escapes (octal and \x included, control-spec's CString); Arti
// reads only \n, \r, \t and backslash-anything-else as that character, refuses an escape
// that starts with a digit, and needs the whole line to be UTF-8. So: '"' and '\' are
// escaped with a backslash, LF, CR and TAB become \n, \r and \t, UTF-8 text passes as it
// is, and every other control character (C0, DEL, C1) and every byte that is not part of
// valid UTF-8 becomes U+FFFD. No octal escapes.
func appendCString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			dst = append(dst, '\\', byte(r))
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = appendVisible(dst, r)
		}
	}
	return append(dst, '"')
}

// appendVisible appends r, or U+FFFD for a control character or an invalid byte (which
// ranging over a string yields as utf8.RuneError).
func appendVisible(dst []byte, r rune) []byte {
	if r == utf8.RuneError || unicode.IsControl(r) {
		return append(dst, replacement...)
	}
	return utf8.AppendRune(dst, r)
}

// errArgsNotToken says an SMETHOD ARGS value would not survive tor's line parser: the line
// is split at spaces and must be printable ASCII.
var errArgsNotToken = errors.New("transport arguments contain a space, control or non-ASCII byte")

// encodeArgs formats a transport's arguments for the ARGS: option of an SMETHOD line: keys
// in sorted order (as goptlib writes them, so lines are reproducible), each value of a
// repeated key as its own pair, '\', '=' and ',' escaped with a backslash.
func encodeArgs(a codec.Args) (string, error) {
	var b strings.Builder
	for _, k := range a.Keys() {
		for _, v := range a[k] {
			if b.Len() > 0 {
				b.WriteByte(',')
			}
			if err := escapeArgTo(&b, k); err != nil {
				return "", err
			}
			b.WriteByte('=')
			if err := escapeArgTo(&b, v); err != nil {
				return "", err
			}
		}
	}
	return b.String(), nil
}

func escapeArgTo(b *strings.Builder, s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= 0x20 || c >= 0x7f {
			return errArgsNotToken
		}
		if c == '\\' || c == '=' || c == ',' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return nil
}

// decodeArgs parses the text after "ARGS:" back into Args: pairs split at unescaped ',',
// key up to the first unescaped '='. It is what a reader of our SMETHOD lines does.
func decodeArgs(s string) (codec.Args, error) {
	a := codec.Args{}
	if s == "" {
		return a, nil
	}
	for {
		end := indexUnescaped(s, ',')
		item := s
		if end >= 0 {
			item = s[:end]
		}
		eq := indexUnescaped(item, '=')
		if eq < 0 {
			return nil, errors.New("missing '=' in " + item)
		}
		k, err := unescape(item[:eq])
		if err != nil {
			return nil, err
		}
		v, err := unescape(item[eq+1:])
		if err != nil {
			return nil, err
		}
		if k == "" {
			return nil, errors.New("empty key")
		}
		a.Add(k, v)
		if end < 0 {
			return a, nil
		}
		s = s[end+1:]
	}
}

// indexUnescaped returns the index of the first sep in s not preceded by an escaping
// backslash, or -1.
func indexUnescaped(s string, sep byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return i
		}
	}
	return -1
}

var errDanglingEscape = errors.New("backslash at end of string")

// unescape drops each escaping backslash: "\x" is x for any byte x, as goptlib reads it.
func unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			i++
			if i >= len(s) {
				return "", errDanglingEscape
			}
			c = s[i]
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}

// parseTransportOptions parses TOR_PT_SERVER_TRANSPORT_OPTIONS into per-transport Args.
// Items are split at unescaped ';'; in each, the transport name runs to the first unescaped
// ':', the key to the next unescaped '=', and the value is the rest, raw '=' included.
// An empty string means no options.
func parseTransportOptions(s string) (map[string]codec.Args, error) {
	opts := map[string]codec.Args{}
	if s == "" {
		return opts, nil
	}
	for {
		end := indexUnescaped(s, ';')
		item := s
		if end >= 0 {
			item = s[:end]
		}
		if item == "" {
			return nil, errors.New("empty option")
		}
		colon := indexUnescaped(item, ':')
		if colon < 0 {
			return nil, errors.New("missing ':' in " + item)
		}
		kv := item[colon+1:]
		eq := indexUnescaped(kv, '=')
		if eq < 0 {
			return nil, errors.New("missing '=' in " + item)
		}
		name, err := unescape(item[:colon])
		if err != nil {
			return nil, err
		}
		k, err := unescape(kv[:eq])
		if err != nil {
			return nil, err
		}
		v, err := unescape(kv[eq+1:])
		if err != nil {
			return nil, err
		}
		if name == "" {
			return nil, errors.New("empty transport name in " + item)
		}
		if k == "" {
			return nil, errors.New("empty key in " + item)
		}
		if opts[name] == nil {
			opts[name] = codec.Args{}
		}
		opts[name].Add(k, v)
		if end < 0 {
			return opts, nil
		}
		s = s[end+1:]
	}
}

// escapeTransportOption is what tor does to one k=v item before joining it into
// TOR_PT_SERVER_TRANSPORT_OPTIONS: it escapes '\', ':' and ';', and leaves '=' alone. Tests
// and fuzz targets use it to build the variable as tor would.
func escapeTransportOption(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' || c == ':' || c == ';' {
			b.WriteByte('\\')
		}
		b.WriteByte(c)
	}
	return b.String()
}
