package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/harness"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// balancerSource is the address HAProxy connects to the bridges from, so that the bridges
// can tell it from the clients (who reach HAProxy from 127.0.0.1).
const balancerSource = "127.0.0.2"

// TestHAProxyThreeBridges puts the real HAProxy (send-proxy-v2, balance source) in front of
// three ptreactor bridges that share one identity, each feeding its own ExtORPort stand-in.
// ptreactor and obfs4proxy clients holding the one bridge line move data through it; each
// stand-in is told the real client address (the one HAProxy logged), never the balancer's;
// a bridge killed mid-run ends its own tunnels only, and new tunnels go through the other
// two with the same bridge line.
func TestHAProxyThreeBridges(t *testing.T) {
	t.Parallel()
	type bridge struct {
		pt    *harness.PT
		extor *pttest.ExtORPort
	}
	var bridges []bridge
	for i := 0; i < 3; i++ {
		e := pttest.StartExtORPort(t, harness.ExtOROptions{})
		pt := launch(t, harness.Spec{Bin: ourBin(t), StateDir: t.TempDir(), ServerTransports: "obfs4",
			BindAddr: "obfs4-127.0.0.1:0", ExtORPort: e.Addr, AuthCookieFile: e.CookieFile,
			ServerOptions: probeIdentity, Args: []string{"-proxy-protocol", balancerSource + "/32"}})
		bridges = append(bridges, bridge{pt, e})
	}
	cert := bridges[0].pt.Methods["obfs4"].Arg("cert")
	for _, b := range bridges[1:] {
		if c := b.pt.Methods["obfs4"].Arg("cert"); c != cert {
			t.Fatalf("bridges with one identity give certs %s and %s", cert, c)
		}
	}

	front := freeLoopbackPort(t)
	var servers strings.Builder
	for i, b := range bridges {
		fmt.Fprintf(&servers, "    server b%d %s send-proxy-v2 source %s check inter 300ms fall 1 rise 2\n", i, b.pt.Addr("obfs4"), balancerSource)
	}
	h := pttest.StartHAProxy(t, nil, `global
    maxconn 512
    log stdout format raw local0
defaults
    mode tcp
    log global
    option tcplog
    option logasap
    option redispatch
    retries 3
    timeout connect 1s
    timeout client 60s
    timeout server 60s
frontend obfs4
    bind `+front+`
    default_backend bridges
backend bridges
    balance roundrobin
`+servers.String())
	// Round robin, where doc/scaling.md has balance source: every client here comes from
	// 127.0.0.1, and source hashing would put them all on one bridge.
	waitListening(t, h, front)

	clients := []*harness.PT{
		launch(t, harness.Spec{Bin: ourBin(t), StateDir: t.TempDir(), ClientTransports: "obfs4"}),
		launch(t, harness.Spec{Bin: obfs4proxyBin(t), StateDir: t.TempDir(), ClientTransports: "obfs4"}),
	}
	open := func() []net.Conn {
		var conns []net.Conn
		for _, cli := range clients {
			for k := 0; k < 4; k++ {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				c, err := harness.DialSOCKS(ctx, cli.Addr("obfs4"), front, harness.ObfsArgs(cert, 0))
				cancel()
				if err != nil {
					t.Fatalf("%s client through HAProxy: %v\n%s", filepath.Base(cli.Spec.Bin), err, h.Output())
				}
				t.Cleanup(func() { c.Close() })
				if err := echoCheck(c, 32<<10); err != nil {
					t.Fatalf("%s client through HAProxy: %v", filepath.Base(cli.Spec.Bin), err)
				}
				conns = append(conns, c)
			}
		}
		return conns
	}
	held := open()

	// Every USERADDR is a client address HAProxy logged, none the balancer's.
	logged := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^(127\.0\.0\.1:\d+) \[`).FindAllStringSubmatch(h.Output(), -1) {
		logged[m[1]] = true
	}
	sessions, busiest := 0, 0
	for i, b := range bridges {
		s := b.extor.Sessions()
		sessions += len(s)
		if len(s) > len(bridges[busiest].extor.Sessions()) {
			busiest = i
		}
		for _, x := range s {
			if !x.AuthOK || !x.Okay || !logged[x.UserAddr] {
				t.Errorf("bridge %d told tor USERADDR %q (auth %v okay %v); HAProxy logged clients %v", i, x.UserAddr, x.AuthOK, x.Okay, logged)
			}
		}
	}
	if sessions != len(held) {
		t.Fatalf("%d ExtORPort sessions for %d tunnels", sessions, len(held))
	}

	// One bridge dies: exactly its tunnels end.
	gone := len(bridges[busiest].extor.Sessions())
	bridges[busiest].pt.Kill()
	var ended int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range held {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if echoCheck(c, 1<<10) != nil {
				mu.Lock()
				ended++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ended != gone {
		t.Errorf("%d tunnels ended when the bridge holding %d of them died", ended, gone)
	}
	time.Sleep(time.Second) // HAProxy's check marks it down (inter 300ms, fall 1)
	open()                  // the same bridge line, through the other two
	after := 0
	for i, b := range bridges {
		if i != busiest {
			after += len(b.extor.Sessions())
		}
	}
	if want := sessions - gone + len(held); after != want {
		t.Errorf("the other two bridges carried %d tunnels in all, want %d", after, want)
	}
}

// echoCheck sends n random bytes through c and reads them back from the echoing stand-in.
func echoCheck(c net.Conn, n int) error {
	msg := make([]byte, n)
	rand.Read(msg)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() { _, err := c.Write(msg); errc <- err }()
	got := make([]byte, n)
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo differs")
	}
	return <-errc
}

// freeLoopbackPort is a 127.0.0.1 port nothing listens on, for HAProxy's frontend.
func freeLoopbackPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// waitListening waits until HAProxy accepts on front. The probe connection is relayed to a
// bridge like any client, which holds it as a failed handshake; it is closed at once.
func waitListening(t *testing.T, h *pttest.HAProxy, front string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", front)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-h.Exited():
			t.Fatalf("haproxy exited: %s", h.Output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("haproxy frontend %s: %v\n%s", front, err, h.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
