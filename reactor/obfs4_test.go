package reactor

import (
	"bytes"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/codec"
)

// obfs4Pair starts an obfs4 client engine and server engine in this process.
func obfs4Pair(t testing.TB, orport string, iat string) (socksAddr, srvAddr, args string, logs *logSink) {
	logs = &logSink{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{Logger: log.With("side", "server"), Transports: testTransports(), ORPort: addrPort(t, orport), StateDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	sa, sargs, err := srv.ListenServer("obfs4", "127.0.0.1:0", codec.Args{"iat-mode": {iat}})
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := sargs.Get("cert")
	mode, _ := sargs.Get("iat-mode")
	cli, _ := New(Config{Logger: log.With("side", "client"), Transports: testTransports()})
	t.Cleanup(func() { cli.Close() })
	ca, err := cli.ListenClient("obfs4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ca.String(), sa.String(), "cert=" + cert + ";iat-mode=" + mode, logs
}

func TestObfs4InProcess(t *testing.T) {
	for _, iat := range []string{"0", "1"} {
		or := listen(t, echo)
		socksAddr, srvAddr, args, logs := obfs4Pair(t, or, iat)
		c, rep, err := socksDial(socksAddr, srvAddr, args)
		if err != nil || rep != 0 {
			t.Fatalf("iat %s: socks: rep %d err %v\n%s", iat, rep, err, logs)
		}
		msg := bytes.Repeat([]byte("obfs4 through the reactor "), 20000)
		go c.Write(msg)
		got := make([]byte, len(msg))
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if n, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("iat %s: echo: %d bytes, %v\n%s", iat, n, err, logs)
		}
		c.Close()
	}
}

// TestObfs4Bulk moves 64 MiB each way through obfs4 engines: sources pause and resume
// many times, and a partial frame pending at a pause must survive it.
func TestObfs4Bulk(t *testing.T) {
	or, orSide := orCollector(t)
	socksAddr, srvAddr, args, _ := obfs4Pair(t, or, "0")
	c, rep, err := socksDial(socksAddr, srvAddr, args)
	if err != nil || rep != 0 {
		t.Fatalf("socks: rep %d err %v", rep, err)
	}
	c.Close()
	<-orSide
	bulkArgs(t, socksAddr, srvAddr, args, 64<<20, orSide)
}
