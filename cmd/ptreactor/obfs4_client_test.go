package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// TestObfs4ClientArgs drives our client PT's SOCKS side as tor does, against an obfs4proxy
// bridge: arguments longer than 255 bytes (tor splits them over the RFC 1929 username and
// password) still reach the bridge, and a bridge line without iat-mode, or with a bad one,
// or a bad cert, is refused with SOCKS reply 0x01 as lyrebird refuses it.
func TestObfs4ClientArgs(t *testing.T) {
	us, peer := ourBin(t), obfs4proxyBin(t)
	tgt := target(t, false)
	bridge := bridgeServer(t, peer, t.TempDir(), tgt.Addr(), "")
	cert := bridge.Methods["obfs4"].Arg("cert")
	cli := launch(t, harness.Spec{Bin: us, StateDir: t.TempDir(), ClientTransports: "obfs4"})
	dial := func(args string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), bridge.Addr("obfs4"), args)
		if err != nil {
			return err
		}
		defer c.Close()
		return bench.Xfer(deadlineConn(c, 20*time.Second), 10000, 10000, 3)
	}

	// Unknown keys pad the string past 255 bytes; the ';' escaping sits across the split.
	long := harness.ObfsArgs(cert, 0) + ";x-pad=" + strings.Repeat(`a\;`, 80)
	if len(long) <= 255 {
		t.Fatalf("test args only %d bytes", len(long))
	}
	if err := dial(long); err != nil {
		t.Errorf("%d-byte arguments: %v", len(long), err)
	}
	for _, bad := range []string{
		"cert=" + cert,                 // iat-mode is required
		harness.ObfsArgs(cert, 3),      // out of range
		harness.ObfsArgs(cert[:60], 0), // short cert
		harness.ObfsArgs(cert+"==", 0), // padded cert
		"iat-mode=0",                   // no cert
	} {
		err := dial(bad)
		var se *harness.SOCKSError
		if !errors.As(err, &se) || se.Code != 1 {
			t.Errorf("args %q: got %v, want SOCKS reply 0x01", bad, err)
		}
	}
}
