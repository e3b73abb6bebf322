package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/ptreactor/ptreactor/bench/lab"
)

// pairFlags collects repeated --pair flags.
type pairFlags []string

func (p *pairFlags) String() string     { return strings.Join(*p, " ") }
func (p *pairFlags) Set(v string) error { *p = append(*p, v); return nil }

// rateFlag is a comma-separated list of positive rates.
type rateFlag []float64

func (r *rateFlag) String() string {
	s := make([]string, len(*r))
	for i, v := range *r {
		s[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return strings.Join(s, ",")
}

func (r *rateFlag) Set(v string) error {
	*r = nil
	for _, f := range strings.Split(v, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || !(x > 0) || math.IsInf(x, 0) {
			return fmt.Errorf("%q is not a positive rate", f)
		}
		*r = append(*r, x)
	}
	return nil
}

const labUsage = `usage: ptbench lab [flags]

Launches each --pair (NAME=SERVER:CLIENT; a binary without '/' is looked up in PATH, and
"refpt" is the reference forwarder for --transport plain) as tor would, drives tunnels
through it and writes DIR/report.md, DIR/results.jsonl and DIR/charts/*.{png,svg}.
Default pairs: ptreactor=bin/ptreactor:bin/ptreactor and obfs4proxy=obfs4proxy:obfs4proxy.

flags:
`

// runLab is `ptbench lab`; it returns the exit status.
func runLab(args []string) int {
	fs := flag.NewFlagSet("ptbench lab", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), labUsage)
		fs.PrintDefaults()
	}
	var pairs pairFlags
	fs.Var(&pairs, "pair", "a contestant, `NAME=SERVER:CLIENT` (repeatable)")
	size := fs.String("size", "standard", "scale of every scenario: quick, standard or full")
	runs := fs.Int("runs", 0, "runs per contestant; each figure is their median (default: the size's, quick 1, standard 3, full 5)")
	scenarios := fs.String("scenario", "", "comma-separated scenarios to run: "+strings.Join(lab.Scenarios, ",")+" (default all)")
	transport := fs.String("transport", "obfs4", "the transport the pairs speak: obfs4 or plain")
	duration := fs.Duration("duration", 0, "length of the soak (default: the size's, quick 4s, standard 20s, full 1m)")
	out := fs.String("out", "ptbench-out", "directory for report.md, results.jsonl and charts/")
	startTimeout := fs.Duration("start-timeout", 15*time.Second, "how long a PT may take to report its methods")
	extor := fs.Bool("extorport", false, "feed the servers through an Extended ORPort stand-in (SAFE_COOKIE) instead of a plain ORPort")
	metrics := fs.String("metrics", "", "comma-separated pair names whose binaries take ptreactor's -metrics: the soak follows their go_goroutines instead of their threads")
	verbose := fs.Bool("v", false, "pass the PTs' stderr through")
	var churnRates rateFlag
	fs.Var(&churnRates, "churn-rates", "comma-separated set-up rates (per second) offered by churn's open loops (default: the size's, quick 100, standard 200, full 400,1500)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "ptbench lab: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	sz, ok := lab.Sizes[*size]
	if !ok {
		fmt.Fprintf(os.Stderr, "ptbench lab: unknown --size %q (quick, standard or full)\n", *size)
		return 2
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptbench lab:", err)
		return 1
	}
	if len(pairs) == 0 {
		pairs = pairFlags{"ptreactor=bin/ptreactor:bin/ptreactor", "obfs4proxy=obfs4proxy:obfs4proxy"}
	}
	if churnRates != nil {
		sz.ChurnRates = churnRates
	}
	cfg := lab.Config{Transport: *transport, Size: sz, Runs: *runs, Duration: *duration, StartTimeout: *startTimeout, ExtORPort: *extor}
	for _, p := range pairs {
		c, err := lab.ParseContestant(p, self)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ptbench lab:", err)
			return 2
		}
		cfg.Contestants = append(cfg.Contestants, c)
	}
	if *metrics != "" {
		for _, name := range strings.Split(*metrics, ",") {
			i := slices.IndexFunc(cfg.Contestants, func(c lab.Contestant) bool { return c.Name == name })
			if i < 0 {
				fmt.Fprintf(os.Stderr, "ptbench lab: --metrics %q: no such --pair\n", name)
				return 2
			}
			cfg.Contestants[i].Metrics = true
		}
	}
	if *scenarios != "" {
		cfg.Scenarios = strings.Split(*scenarios, ",")
	}
	if *verbose {
		cfg.Stderr = os.Stderr
	}
	state, err := os.MkdirTemp("", "ptbench-lab")
	if err != nil {
		fmt.Fprintln(os.Stderr, "ptbench lab:", err)
		return 1
	}
	defer os.RemoveAll(state)
	cfg.Dir = state
	if term.IsTerminal(int(os.Stderr.Fd())) {
		cfg.Progress = progress()
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got os.Signal
	go func() {
		if s, ok := <-sigs; ok {
			got = s
			stop()
		}
	}()

	cfg.Command = "ptbench lab " + strings.Join(args, " ")
	res, err := lab.Run(ctx, cfg)
	if cfg.Progress != nil {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		if ctx.Err() != nil && got != nil {
			fmt.Fprintf(os.Stderr, "ptbench lab: interrupted by %v; every PT it started is stopped\n", got)
			return 128 + int(got.(syscall.Signal))
		}
		fmt.Fprintln(os.Stderr, "ptbench lab:", err)
		return 1
	}
	if err := res.Report.WriteFiles(*out); err != nil {
		fmt.Fprintln(os.Stderr, "ptbench lab: writing the report:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "ptbench lab: wrote %s, %s and %s in %v\n",
		filepath.Join(*out, "report.md"), filepath.Join(*out, "results.jsonl"), filepath.Join(*out, "charts"), res.Report.Took.Round(time.Second))
	if res.Failures > 0 {
		fmt.Fprintf(os.Stderr, "ptbench lab: %d measurement(s) failed; see the report's Failures\n", res.Failures)
		return 1
	}
	return 0
}

// progress returns a lab progress callback that draws one line on the terminal.
func progress() func(done, total int, step string) {
	var bar *progressbar.ProgressBar
	return func(done, total int, step string) {
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(os.Stderr),
				progressbar.OptionShowCount(),
				progressbar.OptionSetWidth(20),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionShowElapsedTimeOnFinish(),
			)
		}
		bar.Describe(step)
		_ = bar.Set(done)
	}
}
