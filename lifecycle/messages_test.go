package lifecycle

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/reactor"
)

// Lines from many goroutines arrive whole, one per write, each a valid LOG line.
func TestMessagesSerialised(t *testing.T) {
	r, w := io.Pipe()
	m := NewMessages(w)
	var wg sync.WaitGroup
	const writers, each = 8, 100
	for i := 0; i < writers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < each; j++ {
				m.Log("info", strings.Repeat("x\n\"é", 50))
			}
		}()
	}
	got := make(chan int)
	go func() {
		n := 0
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if !specLine.MatchString(sc.Text()) || !strings.HasPrefix(sc.Text(), `LOG SEVERITY=info MESSAGE="x\n\"éx`) {
				t.Errorf("bad line %q", sc.Text())
			}
			n++
		}
		got <- n
	}()
	wg.Wait()
	if !m.Close(10 * time.Second) {
		t.Error("Close did not flush")
	}
	w.Close()
	if n := <-got; uint64(n)+m.Dropped() != writers*each {
		t.Errorf("%d lines + %d dropped, want %d", n, m.Dropped(), writers*each)
	}
}

// A closed pipe neither blocks nor panics the writer; configuration lines never get lost
// to a full queue while the reader keeps up.
func TestMessagesBrokenPipe(t *testing.T) {
	r, w := io.Pipe()
	r.Close()
	m := NewMessages(w)
	for i := 0; i < 5000; i++ {
		m.Log("warning", "into the void")
	}
	m.Version()
	if m.Close(10 * time.Second) {
		t.Error("Close reported success on a broken pipe")
	}
	m.Version() // after Close: dropped, no panic
}

// Protocol lines never carry a byte tor refuses.
func TestMessagesSanitise(t *testing.T) {
	var b bytes.Buffer
	m := NewMessages(&b)
	m.CMethodError("plain", "bad\nthing\x00é\xff")
	m.SMethod("obfs4", "[::]:443", "cert=abc,iat-mode=0")
	m.SMethod("plain", "127.0.0.1:1", "")
	m.EnvError("")
	m.Status("plain", "ADDRESS", "198.51.100.1:1", "ERRSTR", "Connection refused")
	m.StatusVersion("obfs4", "ptreactor", "v1.2.3")
	m.StatusStats("obfs4", statusCounts(reactor.TransportStats{Name: "obfs4", Total: 12, Open: 3, HandshakesDone: 9,
		HandshakesFailed: 2, HandshakesTimedOut: 1})...)
	m.Close(time.Second)
	want := "CMETHOD-ERROR plain bad\uFFFDthing\uFFFDé\uFFFD\n" +
		"SMETHOD obfs4 [::]:443 ARGS:cert=abc,iat-mode=0\n" +
		"SMETHOD plain 127.0.0.1:1\n" +
		"ENV-ERROR unknown error\n" +
		"STATUS TRANSPORT=plain ADDRESS=\"198.51.100.1:1\" ERRSTR=\"Connection refused\"\n" +
		"STATUS TRANSPORT=obfs4 TYPE=version IMPLEMENTATION=\"ptreactor\" VERSION=\"v1.2.3\"\n" +
		"STATUS TRANSPORT=obfs4 TYPE=stats CONNECTIONS=12 OPEN=3 HANDSHAKES=9 HANDSHAKE_FAILURES=2 HANDSHAKE_TIMEOUTS=1\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
	for _, l := range strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n") {
		checkBothParents(t, l)
	}
}

// Run with its hooks: an ENV-ERROR goes to the given stdout, nothing else does.
func TestRunHooks(t *testing.T) {
	var out bytes.Buffer
	code := Run(Options{
		Stdout: &out,
		Stdin:  strings.NewReader(""),
		Lookup: lookupMap("TOR_PT_MANAGED_TRANSPORT_VER=1"),
	})
	if code != ExitSetup || out.String() != "ENV-ERROR no TOR_PT_STATE_LOCATION environment variable\n" {
		t.Errorf("exit %d, stdout %q", code, out.String())
	}
}
