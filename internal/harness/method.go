package harness

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ptreactor/ptreactor/codec"
)

// ParseMethod parses a CMETHOD or SMETHOD line: "CMETHOD <name> <socks5|socks4> <addr>" or
// "SMETHOD <name> <addr> [ARGS:k=v,...] [other options]".
func ParseMethod(line string) (Method, error) {
	f := strings.Fields(line)
	switch {
	case len(f) >= 4 && f[0] == "CMETHOD":
		return Method{Name: f[1], Socks: f[2], Addr: f[3]}, nil
	case len(f) >= 3 && f[0] == "SMETHOD":
		m := Method{Name: f[1], Addr: f[2]}
		for _, opt := range f[3:] {
			if a, ok := strings.CutPrefix(opt, "ARGS:"); ok {
				args, err := ParseMethodArgs(a)
				if err != nil {
					return Method{}, fmt.Errorf("%q: %w", line, err)
				}
				m.Args = args
			}
		}
		return m, nil
	}
	return Method{}, fmt.Errorf("not a method line: %q", line)
}

// ParseMethodArgs parses the value of an SMETHOD's ARGS: option, the rule a PT writes it
// by: k=v pairs joined by ',', where '\' escapes the byte after it (the PT escapes '\', '='
// and ','). The key runs to the first unescaped '=', the value to the next unescaped ','
// (a raw '=' in it is kept); a repeated key gathers its values in order. An empty string is
// no arguments; an empty pair, a pair without '=', an empty key and a trailing '\' are
// errors.
func ParseMethodArgs(s string) (codec.Args, error) {
	args := codec.Args{}
	if s == "" {
		return args, nil
	}
	var key, cur strings.Builder
	haveKey := false
	end := func() error {
		if !haveKey {
			if cur.Len() == 0 {
				return errors.New("empty argument")
			}
			return fmt.Errorf("argument %q has no '='", cur.String())
		}
		if key.Len() == 0 {
			return errors.New("argument with an empty key")
		}
		args.Add(key.String(), cur.String())
		key.Reset()
		cur.Reset()
		haveKey = false
		return nil
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			i++
			if i == len(s) {
				return nil, errors.New("trailing backslash")
			}
			cur.WriteByte(s[i])
		case c == '=' && !haveKey:
			key.WriteString(cur.String())
			cur.Reset()
			haveKey = true
		case c == ',':
			if err := end(); err != nil {
				return nil, err
			}
		default:
			cur.WriteByte(c)
		}
	}
	if err := end(); err != nil {
		return nil, err
	}
	return args, nil
}
