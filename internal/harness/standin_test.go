package harness

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestStandInRelisten: between Unlisten and Relisten a connect is refused while a connection
// accepted before goes on echoing; after Relisten the same address accepts again.
func TestStandInRelisten(t *testing.T) {
	s, err := ServeStandIn("", Echo)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	addr := s.Addr()
	echo := func(c net.Conn, msg string) {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, len(msg))
		if _, err := io.ReadFull(c, b); err != nil || string(b) != msg {
			t.Fatalf("echo %q: got %q, %v", msg, b, err)
		}
	}
	before, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	echo(before, "one")

	s.Unlisten()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a connect during the gap was accepted")
	}
	echo(before, "two")
	if s.Addr() != addr {
		t.Fatalf("Addr changed to %s from %s", s.Addr(), addr)
	}

	if err := s.Relisten(); err != nil {
		t.Fatal(err)
	}
	after, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer after.Close()
	echo(after, "three")
	echo(before, "four")
}
