package bench

import (
	"io"
	"net"
	"testing"
	"time"
)

// peerSays connects f's conn to a peer that sends data, reads everything, then closes.
func peerSays(data []byte, f func(net.Conn)) {
	a, b := net.Pipe()
	a.SetDeadline(time.Now().Add(2 * time.Second))
	b.SetDeadline(time.Now().Add(2 * time.Second))
	go io.Copy(io.Discard, b)
	go func() {
		b.Write(data)
		b.Close()
	}()
	f(a)
	a.Close()
}

// FuzzRefSOCKS feeds arbitrary requests to the reference forwarder's SOCKS5 parser.
func FuzzRefSOCKS(f *testing.F) {
	f.Add([]byte{5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80})
	f.Add([]byte{5, 1, 2, 1, 3, 'a', '=', 'b', 1, 0, 5, 1, 0, 3, 4, 'h', 'o', 's', 't', 1, 187})
	f.Add([]byte{5, 1, 0, 5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 80})
	f.Fuzz(func(t *testing.T, req []byte) {
		peerSays(req, func(c net.Conn) {
			target, err := refSOCKS(c)
			if err == nil {
				if _, _, err := net.SplitHostPort(target); err != nil {
					t.Fatalf("refSOCKS returned %q: %v", target, err)
				}
			}
		})
	})
}
