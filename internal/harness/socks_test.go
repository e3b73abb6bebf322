package harness

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

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
	if got := ObfsArgs("AB;C", 2); got != `cert=AB\;C;iat-mode=2` {
		t.Errorf("ObfsArgs: %q", got)
	}
}

// step is one turn of a scripted SOCKS proxy: read n bytes, then write reply.
type step struct {
	n     int
	reply []byte
}

// socksPeer listens on loopback and plays script to the first client; it returns the
// address and a channel with every byte it read.
func socksPeer(t *testing.T, script ...step) (string, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		var read []byte
		for _, s := range script {
			b := make([]byte, s.n)
			n, err := io.ReadFull(c, b)
			read = append(read, b[:n]...)
			if err != nil {
				break
			}
			c.Write(s.reply)
		}
		got <- read
		io.Copy(io.Discard, c)
	}()
	return ln.Addr().String(), got
}

// TestDialSOCKSBytes checks the bytes of a tunnel request as tor sends them: greeting with
// both methods when there are arguments, RFC 1929 with the arguments split, CONNECT by
// IPv4 or IPv6 address or by name.
func TestDialSOCKSBytes(t *testing.T) {
	granted := []byte{5, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	ip6 := append([]byte{5, 1, 0, 4}, net.ParseIP("::1")...)
	for _, c := range []struct {
		target, args string
		script       []step
		want         []byte
	}{
		{"127.0.0.1:80", "", []step{{3, []byte{5, 0}}, {10, granted}},
			[]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80}},
		{"[::1]:443", "a=b", []step{{4, []byte{5, 2}}, {7, []byte{1, 0}}, {22, granted}},
			append([]byte{5, 2, 0, 2, 1, 3, 'a', '=', 'b', 1, 0}, append(ip6, 1, 187)...)},
		{"bridge.example:9", "k=v", []step{{4, []byte{5, 2}}, {7, []byte{1, 0}}, {21, granted}},
			[]byte{5, 2, 0, 2, 1, 3, 'k', '=', 'v', 1, 0, 5, 1, 0, 3, 14, 'b', 'r', 'i', 'd', 'g', 'e', '.', 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 9}},
	} {
		addr, got := socksPeer(t, c.script...)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := DialSOCKS(ctx, addr, c.target, c.args)
		cancel()
		if err != nil {
			t.Errorf("%s: %v", c.target, err)
			continue
		}
		conn.Close()
		if b := <-got; !bytes.Equal(b, c.want) {
			t.Errorf("%s: sent %x, want %x", c.target, b, c.want)
		}
	}
}

// TestDialSOCKSRefusal: a refusal is a *SOCKSError with the reply code; a proxy that picks
// no authentication when there are arguments to pass is an error; a proxy that says
// nothing is bounded by the context.
func TestDialSOCKSRefusal(t *testing.T) {
	addr, _ := socksPeer(t, step{3, []byte{5, 0}}, step{10, []byte{5, 5, 0, 1, 0, 0, 0, 0, 0, 0}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := DialSOCKS(ctx, addr, "127.0.0.1:1", "")
	var se *SOCKSError
	if !errors.As(err, &se) || se.Code != 5 {
		t.Errorf("refused: %v", err)
	}
	addr, _ = socksPeer(t, step{4, []byte{5, 0}})
	if _, err := DialSOCKS(ctx, addr, "127.0.0.1:1", "k=v"); err == nil {
		t.Error("arguments dropped by the proxy: no error")
	}
	silent, _ := socksPeer(t, step{1 << 20, nil})
	ctx, cancel = context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := DialSOCKS(ctx, silent, "127.0.0.1:1", ""); !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Errorf("silent proxy: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// FuzzSOCKSReply feeds arbitrary proxy replies to the SOCKS5 client: it must fail cleanly,
// never panic or hang.
func FuzzSOCKSReply(f *testing.F) {
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 3, 4, 'h', 'o', 's', 't', 0, 80})
	f.Add([]byte{5, 2, 1, 0, 5, 1, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{5, 2, 1, 1})
	f.Fuzz(func(t *testing.T, reply []byte) {
		a, b := net.Pipe()
		a.SetDeadline(time.Now().Add(2 * time.Second))
		b.SetDeadline(time.Now().Add(2 * time.Second))
		go io.Copy(io.Discard, b)
		go func() {
			b.Write(reply)
			b.Close()
		}()
		_ = socksHandshake(a, "127.0.0.1:80", "cert=x;iat-mode=0")
		a.Close()
	})
}
