package reactor

import (
	"io"
	"testing"
)

// BenchmarkSetup measures whole tunnel set-ups through a client engine and a server engine
// in this process: SOCKS5 CONNECT, the transport handshake, the ORPort dial, one 514-byte
// round trip (a Tor cell) to an echoing ORPort, close. Run it with -cpuprofile to see where
// a set-up's CPU goes on both sides; the per-op time is for 8 set-ups in flight.
func BenchmarkSetup(b *testing.B) {
	or := listen(b, echo)
	for _, tr := range []string{"plain", "obfs4"} {
		b.Run(tr, func(b *testing.B) {
			var socksAddr, srvAddr, args string
			if tr == "obfs4" {
				socksAddr, srvAddr, args, _ = obfs4Pair(b, or, "0")
			} else {
				socksAddr, srvAddr, _ = pair(b, or, "", "")
			}
			b.SetParallelism(4) // 4 per GOMAXPROCS: 8 set-ups in flight on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				cell := make([]byte, 514)
				for pb.Next() {
					c, rep, err := socksDial(socksAddr, srvAddr, args)
					if err != nil || rep != 0 {
						b.Errorf("socks: rep %d err %v", rep, err)
						return
					}
					if _, err := c.Write(cell); err != nil {
						b.Error(err)
					}
					if _, err := io.ReadFull(c, cell); err != nil {
						b.Error(err)
					}
					c.Close()
				}
			})
		})
	}
}
