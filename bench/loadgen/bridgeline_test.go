package loadgen

import (
	"errors"
	"strings"
	"testing"
)

const testCert = "0XGYOjBzI5SU8RCXRnp2FBLkY87XCSeLVdv5wgfmWmcndRODRKXYJeiEH0w0LFLkkRR9Gg"

func TestParseBridgeLine(t *testing.T) {
	good := []struct{ line, want string }{
		{"obfs4 127.0.0.1:443 cert=" + testCert + " iat-mode=0",
			"obfs4 127.0.0.1:443 cert=" + testCert + " iat-mode=0"},
		{"Bridge obfs4 192.0.2.1:9001 4352e58420e68f5e40bf7c74faddccd9d1349413 iat-mode=1 cert=" + testCert,
			"obfs4 192.0.2.1:9001 4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=" + testCert + " iat-mode=1"},
		{"  obfs4\t[2001:db8::1]:80 $4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=" + testCert + " iat-mode=2  ",
			"obfs4 [2001:db8::1]:80 4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=" + testCert + " iat-mode=2"},
		{"obfs4 [::ffff:127.0.0.1]:5 node-id=" + strings.Repeat("ab", 20) + " public-key=" + strings.Repeat("cd", 32) + " iat-mode=0",
			"obfs4 127.0.0.1:5 iat-mode=0 node-id=" + strings.Repeat("ab", 20) + " public-key=" + strings.Repeat("cd", 32)},
	}
	for _, c := range good {
		b, err := ParseBridgeLine(c.line)
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if got := b.String(); got != c.want {
			t.Errorf("%q: String() = %q, want %q", c.line, got, c.want)
		}
	}
	bad := []struct{ line, why string }{
		{"", "empty"},
		{"Bridge", "empty"},
		{"meek 127.0.0.1:1 cert=x", `transport "meek"`},
		{"obfs4", "no address"},
		{"obfs4 localhost:443 cert=" + testCert + " iat-mode=0", "not IP:PORT"},
		{"obfs4 127.0.0.1 cert=" + testCert + " iat-mode=0", "not IP:PORT"},
		{"obfs4 127.0.0.1:0 cert=" + testCert + " iat-mode=0", "not IP:PORT"},
		{"obfs4 127.0.0.1:1 ABCD cert=" + testCert + " iat-mode=0", "neither a fingerprint"},
		{"obfs4 127.0.0.1:1 " + strings.Repeat("G", 40) + " cert=" + testCert + " iat-mode=0", "not hex"},
		{"obfs4 127.0.0.1:1 cert=" + testCert + " iat-mode=0 stray", `"stray" is not key=value`},
		{"obfs4 127.0.0.1:1 cert=" + testCert + " =x iat-mode=0", `"=x" is not key=value`},
		{"obfs4 127.0.0.1:1 cert=" + testCert + " iat-mode=0 iat-mode=1", "iat-mode= given twice"},
		{"obfs4 127.0.0.1:1 cert=" + testCert[1:] + " iat-mode=0", "cert is 69 characters"},
		{"obfs4 127.0.0.1:1 cert=" + testCert, "missing argument 'iat-mode'"},
		{"obfs4 127.0.0.1:1 iat-mode=0", "missing argument 'cert'"},
		{"obfs4 127.0.0.1:1 cert=" + testCert + " iat-mode=3", `invalid iat-mode "3"`},
	}
	for _, c := range bad {
		_, err := ParseBridgeLine(c.line)
		if err == nil {
			t.Errorf("%q: accepted", c.line)
			continue
		}
		if !errors.Is(err, ErrBridgeLine) || !strings.Contains(err.Error(), c.why) {
			t.Errorf("%q: error %q, want one wrapping ErrBridgeLine that says %q", c.line, err, c.why)
		}
	}
}

// FuzzBridgeLine: a bridge line comes from a user. Whatever it is, parsing ends in a Bridge
// or an error wrapping ErrBridgeLine; a Bridge written back parses to the same Bridge.
func FuzzBridgeLine(f *testing.F) {
	f.Add("obfs4 127.0.0.1:443 cert=" + testCert + " iat-mode=0")
	f.Add("Bridge obfs4 [2001:db8::1]:80 $4352E58420E68F5E40BF7C74FADDCCD9D1349413 cert=" + testCert + " iat-mode=2")
	f.Add("obfs4 1.2.3.4:5 node-id=" + strings.Repeat("ab", 20) + " public-key=" + strings.Repeat("cd", 32) + " iat-mode=1 legacy-repr=1")
	f.Fuzz(func(t *testing.T, line string) {
		b, err := ParseBridgeLine(line)
		if err != nil {
			if !errors.Is(err, ErrBridgeLine) {
				t.Fatalf("%q: error %v does not wrap ErrBridgeLine", line, err)
			}
			return
		}
		again, err := ParseBridgeLine(b.String())
		if err != nil {
			t.Fatalf("%q: written back as %q, which fails: %v", line, b.String(), err)
		}
		if again.String() != b.String() {
			t.Fatalf("%q: %q then %q", line, b.String(), again.String())
		}
	})
}
