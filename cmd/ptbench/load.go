package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ptreactor/ptreactor/bench/loadgen"
	"github.com/ptreactor/ptreactor/bench/results"
)

// runLoad is `ptbench load`: obfs4 tunnels held against a running bridge (bench/loadgen).
// It prints the summary on stdout, a progress line on stderr when that is a terminal, and
// returns the exit code: 0 when tunnels were set up, 1 when none could be (with one line
// saying why), 2 for bad usage or a malformed bridge line.
func runLoad(args []string) int {
	fs := flag.NewFlagSet("ptbench load", flag.ContinueOnError)
	var lines []string
	fs.Func("bridge", "the bridge `LINE`, as in torrc: 'obfs4 IP:PORT [FINGERPRINT] cert=... iat-mode=N' (required; repeat it to spread the tunnels over several bridges)", func(line string) error {
		lines = append(lines, line)
		return nil
	})
	conns := fs.Int("conns", 1000, "tunnels to hold")
	rate := fs.Float64("rate", 0, "tunnels started per second; 0: as fast as -concurrency allows")
	concurrency := fs.Int("concurrency", loadgen.DefaultConcurrency, "tunnel set-ups in flight at most")
	duration := fs.Duration("duration", 30*time.Second, "how long the run lasts")
	untilHeld := fs.Bool("until-held", false, "end as soon as -conns tunnels are held (at the latest after -duration)")
	timeout := fs.Duration("timeout", loadgen.DefaultTimeout, "bound on each stage of a set-up: TCP connect, obfs4 handshake, tor link handshake")
	torLink := fs.Bool("tor-link", false, "also perform tor's link handshake (TLS, VERSIONS, ..., NETINFO) through every tunnel")
	jsonPath := fs.String("json", "", "write the figures to `FILE` as JSON lines")
	name := fs.String("name", "", "the name the figures carry as their pair (default: the first bridge's address)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ptbench load: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if len(lines) == 0 {
		fmt.Fprintln(os.Stderr, "ptbench load: -bridge is required")
		return 2
	}
	bridges := make([]*loadgen.Bridge, len(lines))
	for i, line := range lines {
		b, err := loadgen.ParseBridgeLine(line)
		if err != nil {
			fmt.Fprintf(os.Stderr, "ptbench load: %v\n", err)
			return 2
		}
		bridges[i] = b
	}
	if *name == "" {
		*name = bridges[0].Addr.String()
	}
	g, err := loadgen.New(loadgen.Config{
		Bridges:     bridges,
		Conns:       *conns,
		Rate:        *rate,
		Concurrency: *concurrency,
		Duration:    *duration,
		UntilHeld:   *untilHeld,
		Timeout:     *timeout,
		TorLink:     *torLink,
		Logger:      slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ptbench load: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	done, shown := make(chan struct{}), make(chan struct{})
	go showProgress(g, *conns, done, shown)
	res := g.Run(ctx)
	close(done)
	<-shown

	fmt.Print(res.Summary())
	if *jsonPath != "" {
		if err := results.WriteFile(*jsonPath, res.Figures(*name)); err != nil {
			fmt.Fprintf(os.Stderr, "ptbench load: %v\n", err)
			return 1
		}
	}
	if err := res.Failure(); err != nil {
		fmt.Fprintf(os.Stderr, "ptbench load: %v\n", err)
		return 1
	}
	return 0
}

// showProgress draws a live line on stderr while the run lasts, if stderr is a terminal,
// and clears it at the end; otherwise it stays silent.
func showProgress(g *loadgen.Generator, conns int, done <-chan struct{}, shown chan<- struct{}) {
	defer close(shown)
	if !term.IsTerminal(int(os.Stderr.Fd())) {
		<-done
		return
	}
	bar := progressbar.NewOptions64(int64(conns),
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription("tunnels held"),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			_ = bar.Clear()
			return
		case <-tick.C:
			s := g.Snapshot()
			_ = bar.Set64(s.Held)
			bar.Describe(fmt.Sprintf("held (%d ok, %d failed, %d setting up)", s.OK, s.Errors, s.Pending))
		}
	}
}
