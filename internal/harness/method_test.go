package harness

import (
	"reflect"
	"strings"
	"testing"

	"github.com/ptreactor/ptreactor/codec"
)

func TestParseMethod(t *testing.T) {
	m, err := ParseMethod(`SMETHOD obfs4 [::]:43734 ARGS:cert=AbC+/x,iat-mode=0,odd=a\,b\=c\\`)
	if err != nil {
		t.Fatal(err)
	}
	if m.Name != "obfs4" || m.Addr != "[::]:43734" || m.Arg("cert") != "AbC+/x" || m.Arg("iat-mode") != "0" || m.Arg("odd") != `a,b=c\` {
		t.Errorf("%+v", m)
	}
	m, err = ParseMethod("CMETHOD obfs4 socks5 127.0.0.1:5555")
	if err != nil || m.Name != "obfs4" || m.Addr != "127.0.0.1:5555" || m.Socks != "socks5" || m.Args != nil {
		t.Errorf("%+v %v", m, err)
	}
	for _, bad := range []string{"SMETHOD", "CMETHOD x socks5", `SMETHOD x 1:2 ARGS:a\`, "SMETHOD x 1:2 ARGS:novalue", "METHOD x 1:2"} {
		if _, err := ParseMethod(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestParseMethodArgsRule pins the SMETHOD ARGS rule: what lifecycle's encoder writes for
// the Args on the right (sorted keys, each value of a repeated key as its own pair, '\',
// '=' and ',' escaped) decodes to exactly those Args, and the inputs its decoder refuses
// are refused here too.
func TestParseMethodArgsRule(t *testing.T) {
	for _, c := range []struct {
		in   string
		want codec.Args // nil: an error
	}{
		{"", codec.Args{}},
		{"cert=AbC+/x,iat-mode=0", codec.Args{"cert": {"AbC+/x"}, "iat-mode": {"0"}}},
		{`k=a\,b\=c\\`, codec.Args{"k": {`a,b=c\`}}},
		{`a\=b=c`, codec.Args{"a=b": {"c"}}},
		{`a\,b=c`, codec.Args{"a,b": {"c"}}},
		{`a\\=c`, codec.Args{`a\`: {"c"}}},
		{"k=v=w", codec.Args{"k": {"v=w"}}}, // a raw '=' in a value is kept
		{"k=", codec.Args{"k": {""}}},
		{"k=1,k=2,j=0", codec.Args{"j": {"0"}, "k": {"1", "2"}}},
		{`k=\x\y`, codec.Args{"k": {"xy"}}}, // any escaped byte stands for itself
		{",", nil},
		{"k=v,", nil},
		{",k=v", nil},
		{"k=v,,j=w", nil},
		{"novalue", nil},
		{`k\=v`, nil},
		{"=v", nil},
		{`k=v\`, nil},
	} {
		got, err := ParseMethodArgs(c.in)
		if c.want == nil {
			if err == nil {
				t.Errorf("%q: %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.in, got, err, c.want)
		}
	}
}

// encodeArgs writes Args as a PT writes its ARGS: sorted keys, '\', '=' and ',' escaped.
func encodeArgs(a codec.Args) string {
	esc := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `,`, `\,`)
	var parts []string
	for _, k := range a.Keys() {
		for _, v := range a[k] {
			parts = append(parts, esc.Replace(k)+"="+esc.Replace(v))
		}
	}
	return strings.Join(parts, ",")
}

// FuzzParseMethod: the method-line parser reads a child's stdout and must not panic; what
// it accepts as ARGS must survive a round trip through the PT's escaping.
func FuzzParseMethod(f *testing.F) {
	f.Add("SMETHOD obfs4 127.0.0.1:1 ARGS:cert=abc,iat-mode=0")
	f.Add(`SMETHOD x [::1]:2 ARGS:a=b\,c,d=\\`)
	f.Add("SMETHOD x [::1]:2 ARGS:k=1,k=2")
	f.Add("CMETHOD obfs4 socks5 127.0.0.1:9")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseMethod(line)
		if err != nil || m.Args == nil {
			return
		}
		again, err := ParseMethodArgs(encodeArgs(m.Args))
		if err != nil {
			t.Fatalf("re-parse of %v: %v", m.Args, err)
		}
		if !reflect.DeepEqual(again, m.Args) {
			t.Fatalf("round trip %v -> %v", m.Args, again)
		}
	})
}
