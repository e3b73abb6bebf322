package lifecycle

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ptreactor/ptreactor/codec"
)

// CStrings for LOG and STATUS: escapes both parents read alike, UTF-8 as it is, U+FFFD for
// what neither can carry; each one read back by both grammars.
func TestQuoteCString(t *testing.T) {
	for _, c := range []struct{ in, want, text string }{
		{"", `""`, ""},
		{"Connected to bridge A", `"Connected to bridge A"`, "Connected to bridge A"},
		{"a\nb\r\tc", `"a\nb\r\tc"`, "a\nb\r\tc"},
		{`say "hi"`, `"say \"hi\""`, `say "hi"`},
		{`back\slash \0 \x41`, `"back\\slash \\0 \\x41"`, `back\slash \0 \x41`},
		{`iat-mode=7"x\é`, `"iat-mode=7\"x\\é"`, `iat-mode=7"x\é`},
		{"日本 \u00e9\U0001F600", "\"日本 é😀\"", "日本 é😀"},
		{"nul\x00 esc\x1b del\x7f c1\u0085", "\"nul\uFFFD esc\uFFFD del\uFFFD c1\uFFFD\"", "nul\uFFFD esc\uFFFD del\uFFFD c1\uFFFD"},
		{"bad \xff\xc3 end", "\"bad \uFFFD\uFFFD end\"", "bad \uFFFD\uFFFD end"},
	} {
		got := string(appendCString(nil, c.in))
		if got != c.want {
			t.Errorf("appendCString(%q) = %s, want %s", c.in, got, c.want)
		}
		line := "LOG SEVERITY=info MESSAGE=" + got
		for name, parse := range map[string]func(string) (parentMsg, error){"tor": torParse, "Arti": artiParse} {
			m, err := parse(line)
			if err != nil || m.fields["MESSAGE"] != c.text {
				t.Errorf("%s reads %s as %q, %v; want %q", name, got, m.fields["MESSAGE"], err, c.text)
			}
		}
	}
}

// tor escapes ':', ';' and '\' in each k=v item, not '='.
func TestParseTransportOptions(t *testing.T) {
	for _, c := range []struct {
		in   string
		want map[string]codec.Args
	}{
		{"", map[string]codec.Args{}},
		{"scramblesuit:key=banana;automata:rule=110;automata:depth=3", map[string]codec.Args{
			"scramblesuit": {"key": {"banana"}},
			"automata":     {"rule": {"110"}, "depth": {"3"}},
		}},
		{"obfs4:iat-mode=1", map[string]codec.Args{"obfs4": {"iat-mode": {"1"}}}},
		{`t\:1:k=v`, map[string]codec.Args{"t:1": {"k": {"v"}}}},
		{`t:k\:1=v`, map[string]codec.Args{"t": {"k:1": {"v"}}}},
		{`t:k=v\;3`, map[string]codec.Args{"t": {"k": {"v;3"}}}},
		{`t:k=v=v`, map[string]codec.Args{"t": {"k": {"v=v"}}}},
		{`t:k=`, map[string]codec.Args{"t": {"k": {""}}}},
		{`t:k=a;t:k=b`, map[string]codec.Args{"t": {"k": {"a", "b"}}}},
		{`t:k=\\`, map[string]codec.Args{"t": {"k": {`\`}}}},
		{`t:a\=b=c`, map[string]codec.Args{"t": {"a=b": {"c"}}}},
	} {
		got, err := parseTransportOptions(c.in)
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q = %v, want %v", c.in, got, c.want)
		}
	}
	for _, bad := range []string{
		"t", "t:k", ":k=v", "t:=v", "t:k=v;", ";t:k=v", "t:k=v;;t:k=v", `t:k=v\`, `t\:k=v`, "k=v",
	} {
		if got, err := parseTransportOptions(bad); err == nil {
			t.Errorf("%q: no error, got %v", bad, got)
		}
	}
}

// goptlib's test vectors for the SOCKS argument string apply here: that string shares
// the k=v;k=v grammar with one transport's TOR_PT_SERVER_TRANSPORT_OPTIONS items: prefix
// each item with "t:" and parse.
func TestTransportOptionsGoptlibVectors(t *testing.T) {
	for _, c := range []struct {
		in   string
		want codec.Args
	}{
		{"key=", codec.Args{"key": {""}}},
		{"key==", codec.Args{"key": {"="}}},
		{"a=b=c", codec.Args{"a": {"b=c"}}},
		{`key=value\;`, codec.Args{"key": {"value;"}}},
		{`\;=\;;\\=\;`, codec.Args{";": {";"}, `\`: {";"}}},
		{`a\=b=c`, codec.Args{"a=b": {"c"}}},
		{"key=value1;key=value2", codec.Args{"key": {"value1", "value2"}}},
	} {
		got, err := parseTransportOptions(prefixItems("t:", c.in))
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got["t"], c.want) {
			t.Errorf("%q = %v, want %v", c.in, got["t"], c.want)
		}
	}
	for _, bad := range []string{"key", `key\`, "=value", "==value", `key=value\`, "a;b=c", ";", "key=value;", ";key=value", `key\=value`} {
		if got, err := parseTransportOptions(prefixItems("t:", bad)); err == nil {
			t.Errorf("%q: no error, got %v", bad, got)
		}
	}
}

// prefixItems puts p before every ';'-separated item of s (escapes respected).
func prefixItems(p, s string) string {
	var b strings.Builder
	b.WriteString(p)
	for i := 0; i < len(s); i++ {
		c := s[i]
		b.WriteByte(c)
		if c == '\\' && i+1 < len(s) {
			i++
			b.WriteByte(s[i])
		} else if c == ';' {
			b.WriteString(p)
		}
	}
	return b.String()
}

func TestEncodeArgs(t *testing.T) {
	for _, c := range []struct {
		in   codec.Args
		want string
	}{
		{nil, ""},
		{codec.Args{"iat-mode": {"0"}, "cert": {"AAAA+/z"}}, "cert=AAAA+/z,iat-mode=0"},
		{codec.Args{"N": {"13"}}, "N=13"},
		{codec.Args{"a=b": {"c,d"}, `e\`: {"="}}, `a\=b=c\,d,e\\=\=`},
		{codec.Args{"k": {"1", "2"}}, "k=1,k=2"},
		{codec.Args{"k": {""}}, "k="},
	} {
		got, err := encodeArgs(c.in)
		if err != nil || got != c.want {
			t.Errorf("encodeArgs(%v) = %q, %v; want %q", c.in, got, err, c.want)
		}
		back, err := decodeArgs(got)
		if err != nil {
			t.Errorf("decodeArgs(%q): %v", got, err)
		}
		if len(c.in) > 0 && !reflect.DeepEqual(back, c.in) {
			t.Errorf("decodeArgs(%q) = %v, want %v", got, back, c.in)
		}
	}
	for _, bad := range []codec.Args{{"k": {"a b"}}, {"k\n": {"v"}}, {"k": {"é"}}} {
		if got, err := encodeArgs(bad); err == nil {
			t.Errorf("encodeArgs(%v) = %q, want an error", bad, got)
		}
	}
}
