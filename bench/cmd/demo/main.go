// Command demo shows ptreactor doing its job with nothing else set up: it plays tor twice,
// launching a bridge-side ptreactor and a client-side ptreactor with the environment tor
// gives a managed proxy, prints what each tells tor on stdout, opens a SOCKS connection
// through the client the way tor would for a bridge line, pushes data through both
// processes into an in-process ORPort stand-in and back, checks it, and shuts both down by
// closing their stdin as tor does when it exits.
//
//	go run ./bench/cmd/demo -bin bin/ptreactor
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

func main() {
	bin := flag.String("bin", "bin/ptreactor", "ptreactor binary")
	transport := flag.String("transport", "auto", "obfs4, plain, or auto (obfs4, else plain)")
	size := flag.Int64("bytes", 64<<20, "bytes to push each way")
	flag.Parse()
	if err := run(*bin, *transport, *size); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

var out sync.Mutex

func say(format string, args ...any) {
	out.Lock()
	defer out.Unlock()
	fmt.Printf(format+"\n", args...)
}

// echoLines prints each stdout line of a PT with the role in front, as tor would read it.
func echoLines(role string) func(string) {
	return func(l string) { say("  %-6s -> tor: %s", role, l) }
}

func run(bin, transport string, size int64) error {
	bin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("%v (build it with make build)", err)
	}
	dir, err := os.MkdirTemp("", "ptreactor-demo")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	tgt, err := bench.NewTarget(false)
	if err != nil {
		return err
	}
	defer tgt.Close()
	say("ORPort stand-in (plays the bridge's tor) listening on %s", tgt.Addr())

	try := []string{transport}
	if transport == "auto" {
		try = []string{"obfs4", "plain"}
	}
	var p *harness.Pair
	for i, t := range try {
		say("\nlaunching the bridge side and the client side for transport %q, as tor would:", t)
		spec := harness.PairSpec{ClientBin: bin, ServerBin: bin, Transport: t,
			Dir: filepath.Join(dir, t), ORPort: tgt.Addr(), ClientStderr: os.Stderr, ServerStderr: os.Stderr}
		p, err = startPair(spec)
		if err == nil {
			break
		}
		if i+1 < len(try) {
			say("  %s is not available in this build (%s); falling back to %s", t, short(err), try[i+1])
			continue
		}
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			p.Client.Kill()
			p.Server.Kill()
		}
	}()

	if p.Transport == "obfs4" {
		line, _ := os.ReadFile(filepath.Join(dir, "obfs4", "server", "obfs4_bridgeline.txt"))
		for _, l := range strings.Split(string(line), "\n") {
			if strings.HasPrefix(l, "Bridge ") {
				say("\nthe bridge's line for users (obfs4_bridgeline.txt):\n  %s", l)
			}
		}
		say("the client's SOCKS5 username/password carries: %s", p.SOCKSArgs)
	}
	say("\nopening a tunnel: SOCKS5 to %s, CONNECT %s", p.Client.Addr(p.Transport), p.Bridge)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	c, err := p.Dial(ctx)
	cancel()
	if err != nil {
		return fmt.Errorf("SOCKS: %w", err)
	}
	const seed = 2026
	say("pushing %d MiB each way (client -> bridge -> ORPort, and back), every byte checked...", size>>20)
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	start := time.Now()
	err = bench.Xfer(c, size, size, seed)
	took := time.Since(start)
	if err != nil {
		c.Close()
		return fmt.Errorf("transfer: %w", err)
	}
	say("  arrived at the ORPort: %d bytes, each the one the client sent at its place", size)
	say("  arrived at the client: %d bytes, each the one the ORPort sent at its place", size)
	say("  in %v, checking included", took.Round(time.Millisecond))

	// Throughput without the demo's own hashing: zeros from the ORPort to the client.
	bulk := 4 * size
	start = time.Now()
	err = bench.Xfer(c, 0, bulk, 0)
	took = time.Since(start)
	c.Close()
	if err != nil {
		return fmt.Errorf("bulk transfer: %w", err)
	}
	say("  then %d MiB ORPort -> client, unchecked: %.0f MB/s (one tunnel; both PTs and this demo share the CPUs)",
		bulk>>20, float64(bulk)/took.Seconds()/1e6)

	say("\nclosing both processes' stdin, as tor does when it exits:")
	okc, oks := p.Client.Stop(10*time.Second), p.Server.Stop(10*time.Second)
	stopped = true
	say("  client exited on its own: %v (code %d); bridge side: %v (code %d)", okc, p.Client.ExitCode(), oks, p.Server.ExitCode())
	if !okc || !oks {
		return fmt.Errorf("a process had to be killed")
	}
	return nil
}

func startPair(spec harness.PairSpec) (*harness.Pair, error) {
	// Print the header lines as they come: the bench harness hands them to Lines.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return harness.StartPairWithLines(ctx, spec, echoLines("bridge"), echoLines("client"))
}

// short is the start of an error, without the header lines the harness appends.
func short(err error) string {
	s, _, _ := strings.Cut(err.Error(), ":")
	if t, _, ok := strings.Cut(err.Error(), ": ["); ok {
		s = t
	}
	return s
}
