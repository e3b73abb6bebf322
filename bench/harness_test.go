package bench

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// obfs4proxy returns the path of the peer binary; its absence fails the test (make deps
// installs it).
func obfs4proxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy not installed (make deps): %v", err)
	}
	return p
}

// TestObfs4proxyPair checks the harness itself against two obfs4proxy processes: launch,
// SMETHOD ARGS, SOCKS with tor's argument encoding, and a checked transfer both ways.
func TestObfs4proxyPair(t *testing.T) {
	bin := obfs4proxy(t)
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := StartPair(ctx, PairSpec{ClientBin: bin, ServerBin: bin, Transport: "obfs4", Dir: t.TempDir(), ORPort: tgt.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(5 * time.Second)
	if c := p.Server.Methods["obfs4"].Args["cert"]; len(c) != 70 {
		t.Errorf("cert %q: want 70 chars", c)
	}
	if IATArg(p.Server) != 0 {
		t.Errorf("iat-mode: %q", p.Server.Header)
	}
	c, err := p.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := Xfer(c, 1<<20, 3<<20, 42); err != nil {
		t.Fatal(err)
	}
}

// TestRefPT runs the reference forwarder as a pair, re-executing the test binary.
func TestRefPT(t *testing.T) {
	tgt, err := NewTarget(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tgt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	env := []string{RefPTEnv + "=1"}
	self := selfBinary(t)
	p, err := StartPair(ctx, PairSpec{ClientBin: self, ServerBin: self, ClientEnv: env, ServerEnv: env,
		Transport: "plain", Dir: t.TempDir(), ORPort: tgt.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		c, err := p.Dial(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := Xfer(c, 5<<20, 7<<20, uint64(i)+7); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	if !p.Stop(5 * time.Second) {
		t.Error("reference forwarder did not exit on stdin close")
	}
}

func TestParseMethod(t *testing.T) {
	m, err := ParseMethod(`SMETHOD obfs4 [::]:43734 ARGS:cert=AbC+/x,iat-mode=0,odd=a\,b\=c\\`)
	if err != nil {
		t.Fatal(err)
	}
	if m.Addr != "[::]:43734" || m.Args["cert"] != "AbC+/x" || m.Args["iat-mode"] != "0" || m.Args["odd"] != `a,b=c\` {
		t.Errorf("%+v", m)
	}
	m, err = ParseMethod("CMETHOD obfs4 socks5 127.0.0.1:5555")
	if err != nil || m.Addr != "127.0.0.1:5555" || m.Socks != "socks5" {
		t.Errorf("%+v %v", m, err)
	}
	for _, bad := range []string{"SMETHOD", "CMETHOD x socks5", `SMETHOD x 1:2 ARGS:a\`, "SMETHOD x 1:2 ARGS:novalue"} {
		if _, err := ParseMethod(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// FuzzParseMethod: the method-line parser reads a child's stdout and must not panic; what
// it accepts as ARGS must survive a round trip through goptlib-style escaping.
func FuzzParseMethod(f *testing.F) {
	f.Add("SMETHOD obfs4 127.0.0.1:1 ARGS:cert=abc,iat-mode=0")
	f.Add(`SMETHOD x [::1]:2 ARGS:a=b\,c,d=\\`)
	f.Add("CMETHOD obfs4 socks5 127.0.0.1:9")
	f.Fuzz(func(t *testing.T, line string) {
		m, err := ParseMethod(line)
		if err != nil || m.Args == nil {
			return
		}
		var parts []string
		for k, v := range m.Args {
			parts = append(parts, escapeArg(k)+"="+escapeArg(v))
		}
		again, err := ParseMethodArgs(strings.Join(parts, ","))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if len(again) != len(m.Args) {
			t.Fatalf("round trip %v -> %v", m.Args, again)
		}
		for k, v := range m.Args {
			if again[k] != v {
				t.Fatalf("round trip %v -> %v", m.Args, again)
			}
		}
	})
}

func escapeArg(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `=`, `\=`, `,`, `\,`)
	return r.Replace(s)
}

// TestSplitSOCKSArgs pins tor's split of the argument string over RFC 1929 fields.
func TestSplitSOCKSArgs(t *testing.T) {
	u, p := SplitSOCKSArgs("cert=x;iat-mode=0")
	if string(u) != "cert=x;iat-mode=0" || string(p) != "\x00" {
		t.Errorf("short: %q %q", u, p)
	}
	long := strings.Repeat("a", 300)
	u, p = SplitSOCKSArgs(long)
	if len(u) != 255 || len(p) != 45 {
		t.Errorf("long: %d %d", len(u), len(p))
	}
	if got := EscapeSOCKSArg(`a;b\c`); got != `a\;b\\c` {
		t.Errorf("escape: %q", got)
	}
}
