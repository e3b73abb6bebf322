// Command load measures ptreactor against its peers with real processes and writes a
// markdown report: a ptreactor obfs4 pair against an obfs4proxy pair, and a ptreactor plain
// pair against the reference forwarder (goroutine pairs and io.Copy, which splices). Each
// contestant is launched as tor launches a PT, fed by an in-process ORPort stand-in, and
// measured for bulk throughput (1, 8, 64 tunnels), CPU seconds per GiB on each side,
// tunnels set up per second, and RSS per idle tunnel. Contestants alternate within every
// run and each figure is the median of the runs, so the ratios compare like with like.
//
//	go run ./bench/cmd/load -bin bin/ptreactor            # full run, minutes
//	go run ./bench/cmd/load -bin bin/ptreactor -quick     # seconds
package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

type config struct {
	bin, peer    string
	quick        bool
	runs         int
	bulkTotal    int64
	tunnelCounts []int
	hsWorkers    int
	hsTime       time.Duration
	idle         int
	suites       []string
	out          string
	verbose      bool
}

func main() {
	bench.RunRefPTIfAsked()
	var c config
	var suites string
	flag.StringVar(&c.bin, "bin", "bin/ptreactor", "ptreactor binary")
	flag.StringVar(&c.peer, "peer", "obfs4proxy", "obfs4proxy binary (looked up in PATH)")
	flag.BoolVar(&c.quick, "quick", false, "a run of seconds instead of minutes (small volumes, one run)")
	flag.IntVar(&c.runs, "runs", 0, "runs per contestant; figures are medians (default 3, quick 1)")
	flag.IntVar(&c.idle, "idle", 0, "idle tunnels for the RSS figure (default 8000, quick 300)")
	flag.StringVar(&suites, "suites", "obfs4,plain", "suites to run: obfs4 (ptreactor vs obfs4proxy), plain (ptreactor vs reference forwarder)")
	flag.StringVar(&c.out, "o", "", "also write the report to this file")
	flag.BoolVar(&c.verbose, "v", false, "log every measurement to stderr")
	flag.Parse()
	c.suites = strings.Split(suites, ",")
	c.tunnelCounts = []int{1, 8, 64}
	c.hsWorkers = 32
	if c.quick {
		c.bulkTotal, c.hsTime = 64<<20, time.Second
		c.runs = cmp(c.runs, 1)
		c.idle = cmp(c.idle, 300)
	} else {
		c.bulkTotal, c.hsTime = 1<<30, 5*time.Second
		c.runs = cmp(c.runs, 3)
		// The figure: 8,000 idle tunnels. ptreactor sheds past 45 % of its
		// descriptor limit (reactor.tunnelLimit), 8,971 at the 20,000 this machine allows.
		c.idle = cmp(c.idle, 8000)
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func cmp(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// raiseNoFile lifts RLIMIT_NOFILE to the hard limit. Setting it explicitly (rather than
// relying on the Go runtime's own raise) also makes the children inherit it.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	l.Cur = l.Max
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

type contestant struct {
	name string
	spec harness.PairSpec
	// samples by metric name; err is the first failure
	samples map[string][]float64
	errs    []string
	// idle are the idle-tunnel counts to measure RSS at.
	idle []int
}

type suite struct {
	title      string
	ours, peer *contestant
	notes      []string
}

func run(c config) error {
	nofile := raiseNoFile()
	// Each process holds about two fds per idle tunnel (the generator: its client end and
	// the ORPort stand-in's end); keep a margin under the limit.
	if max := int(nofile/2) - 1000; c.idle > max {
		fmt.Fprintf(os.Stderr, "load: %d idle tunnels need ~%d fds, limit %d: using %d\n", c.idle, 2*c.idle, nofile, max)
		c.idle = max
	}
	bin, err := filepath.Abs(c.bin)
	if err != nil {
		return err
	}
	peer, peerErr := exec.LookPath(c.peer)
	self, err := os.Executable()
	if err != nil {
		return err
	}
	tgt, err := bench.NewTarget(false)
	if err != nil {
		return err
	}
	defer tgt.Close()
	tmp, err := os.MkdirTemp("", "ptreactor-load")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var suites []*suite
	for _, s := range c.suites {
		switch s {
		case "obfs4":
			if peerErr != nil {
				return fmt.Errorf("obfs4 suite needs obfs4proxy: %v", peerErr)
			}
			suites = append(suites, &suite{title: "obfs4: ptreactor pair vs obfs4proxy pair",
				ours: newContestant("ptreactor", bin, bin, "obfs4", nil, c.idle),
				peer: newContestant("obfs4proxy", peer, peer, "obfs4", nil, c.idle)})
		case "plain":
			env := []string{bench.RefPTEnv + "=1"}
			// The reference blocks in splice(2) on idle tunnels, and each blocked splice
			// holds a pipe: 6 descriptors per tunnel per process, so it fits about 3,000
			// tunnels under 20,000 descriptors. Both are measured there, ptreactor also
			// at the full count.
			refIdle := min(c.idle, int(nofile)/6-300)
			ours := []int{refIdle}
			if c.idle > refIdle {
				ours = append(ours, c.idle)
			}
			suites = append(suites, &suite{title: "plain: ptreactor pair vs reference forwarder pair (goroutines + io.Copy/splice)",
				ours:  newContestant("ptreactor", bin, bin, "plain", nil, ours...),
				peer:  newContestant("reference", self, self, "plain", env, refIdle),
				notes: []string{fmt.Sprintf("the reference holds a pipe (2 descriptors) per direction blocked in splice, 6 descriptors per tunnel per process, so its idle figure is taken at %d tunnels", refIdle)}})
		default:
			return fmt.Errorf("unknown suite %q", s)
		}
	}
	started := time.Now()
	ceiling := direct(tgt, c.bulkTotal)
	logf(c, "generator ceiling (no PTs): %.0f MB/s", ceiling)
	for r := 1; r <= c.runs; r++ {
		for _, s := range suites {
			for _, ct := range []*contestant{s.ours, s.peer} {
				logf(c, "run %d/%d: %s %s", r, c.runs, ct.name, ct.spec.Transport)
				measure(c, ct, tgt, filepath.Join(tmp, fmt.Sprintf("%s-%s-%d", ct.name, ct.spec.Transport, r)))
			}
		}
	}
	report := render(c, suites, time.Since(started), bin, peer, ceiling)
	fmt.Print(report)
	if c.out != "" {
		return os.WriteFile(c.out, []byte(report), 0o644)
	}
	return nil
}

func newContestant(name, cbin, sbin, transport string, env []string, idle ...int) *contestant {
	return &contestant{name: name, samples: map[string][]float64{}, idle: idle, spec: harness.PairSpec{
		ClientBin: cbin, ServerBin: sbin, Transport: transport, ClientEnv: env, ServerEnv: env,
	}}
}

func logf(c config, format string, args ...any) {
	if c.verbose {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
	}
}

// measure runs every metric once for ct on fresh processes and appends the samples. A
// failure is recorded and ends this run for ct; the report shows it.
func measure(c config, ct *contestant, tgt *bench.Target, dir string) {
	fail := func(what string, err error) {
		msg := fmt.Sprintf("%s: %v", what, err)
		logf(c, "%s: %s", ct.name, msg)
		if !slices.Contains(ct.errs, msg) {
			ct.errs = append(ct.errs, msg)
		}
	}
	start := func(sub string) (*harness.Pair, bool) {
		spec := ct.spec
		spec.Dir = filepath.Join(dir, sub)
		spec.ORPort = tgt.Addr()
		if c.verbose {
			spec.ClientStderr, spec.ServerStderr = os.Stderr, os.Stderr
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		p, err := harness.StartPair(ctx, spec)
		if err != nil {
			fail("start", err)
			return nil, false
		}
		return p, true
	}

	p, ok := start("bulk")
	if !ok {
		return
	}
	for _, n := range c.tunnelCounts {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		res, err := bench.Bulk(ctx, p, n, c.bulkTotal)
		cancel()
		if err != nil {
			fail(fmt.Sprintf("bulk %d tunnels", n), err)
			p.Stop(5 * time.Second)
			return
		}
		cl, sv := res.CPUPerGiB()
		logf(c, "%s bulk %d: %.0f MB/s, CPU s/GiB client %.2f server %.2f", ct.name, n, res.MBps(), cl, sv)
		ct.add(fmt.Sprintf("bulk%d.mbps", n), res.MBps())
		ct.add(fmt.Sprintf("bulk%d.cpu.client", n), cl)
		ct.add(fmt.Sprintf("bulk%d.cpu.server", n), sv)
		if cl+sv > 0 {
			// Throughput per core: what one core would carry through both PTs of the pair,
			// the figure that does not depend on how the two cores were shared.
			ct.add(fmt.Sprintf("bulk%d.percore", n), float64(1<<30)/1e6/(cl+sv))
		}
	}
	{
		ctx, cancel := context.WithTimeout(context.Background(), c.hsTime+time.Minute)
		res, err := bench.Handshakes(ctx, p, c.hsWorkers, c.hsTime)
		cancel()
		if err != nil {
			fail("handshakes", err)
			p.Stop(5 * time.Second)
			return
		}
		cl, sv := res.CPUPer()
		logf(c, "%s handshakes: %.0f/s, CPU client %v server %v", ct.name, res.PerSecond(), cl, sv)
		ct.add("hs.rate", res.PerSecond())
		ct.add("hs.cpu.client", float64(cl)/1e6)
		ct.add("hs.cpu.server", float64(sv)/1e6)
	}
	p.Stop(5 * time.Second)

	for _, n := range ct.idle {
		if !measureIdle(c, ct, n, start, fail) {
			return
		}
	}
}

// measureIdle opens n idle tunnels through a fresh, warmed-up pair and records the RSS
// growth per tunnel.
func measureIdle(c config, ct *contestant, n int, start func(string) (*harness.Pair, bool), fail func(string, error)) bool {
	p, ok := start(fmt.Sprintf("idle%d", n))
	if !ok {
		return false
	}
	defer p.Stop(5 * time.Second)
	// Warm both processes up so the baseline includes their steady runtime overhead.
	if _, err := bench.Bulk(context.Background(), p, 8, 8<<20); err != nil {
		fail("idle warm-up", err)
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := bench.Idle(ctx, p, n, 2*time.Second)
	if err != nil {
		fail(fmt.Sprintf("%d idle tunnels", n), err)
		return false
	}
	logf(c, "%s idle %d: client %.1f KiB/tunnel, server %.1f KiB/tunnel", ct.name, res.N, res.ClientPer/1024, res.ServerPer/1024)
	k := fmt.Sprintf("idle%d", n)
	ct.add(k+".client", res.ClientPer/1024)
	ct.add(k+".server", res.ServerPer/1024)
	ct.add(k+".client.total", float64(res.ClientRSS)/(1<<20))
	ct.add(k+".server.total", float64(res.ServerRSS)/(1<<20))
	return true
}

func (ct *contestant) add(k string, v float64) { ct.samples[k] = append(ct.samples[k], v) }

func (ct *contestant) median(k string) (float64, bool) {
	s := slices.Clone(ct.samples[k])
	if len(s) == 0 {
		return 0, false
	}
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2], true
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2, true
}

type row struct {
	key, label, format string
	higherBetter       bool
}

func rows(c config, s *suite) []row {
	var rs []row
	for _, n := range c.tunnelCounts {
		rs = append(rs,
			row{fmt.Sprintf("bulk%d.mbps", n), fmt.Sprintf("bulk, %d tunnel(s): MB/s", n), "%.0f", true},
			row{fmt.Sprintf("bulk%d.cpu.client", n), fmt.Sprintf("bulk, %d tunnel(s): client CPU s/GiB", n), "%.2f", false},
			row{fmt.Sprintf("bulk%d.cpu.server", n), fmt.Sprintf("bulk, %d tunnel(s): server CPU s/GiB", n), "%.2f", false},
			row{fmt.Sprintf("bulk%d.percore", n), fmt.Sprintf("bulk, %d tunnel(s): MB/s per core (client+server CPU)", n), "%.0f", true},
		)
	}
	rs = append(rs,
		row{"hs.rate", fmt.Sprintf("tunnels set up per second (%d workers)", c.hsWorkers), "%.0f", true},
		row{"hs.cpu.client", "client CPU ms per tunnel set-up", "%.3f", false},
		row{"hs.cpu.server", "server CPU ms per tunnel set-up", "%.3f", false},
	)
	counts := slices.Clone(s.ours.idle)
	for _, n := range s.peer.idle {
		if !slices.Contains(counts, n) {
			counts = append(counts, n)
		}
	}
	slices.Sort(counts)
	for _, n := range counts {
		k := fmt.Sprintf("idle%d", n)
		rs = append(rs,
			row{k + ".client", fmt.Sprintf("client RSS KiB per idle tunnel, %d tunnels", n), "%.1f", false},
			row{k + ".server", fmt.Sprintf("server RSS KiB per idle tunnel, %d tunnels", n), "%.1f", false},
			row{k + ".client.total", fmt.Sprintf("client RSS MiB holding %d idle tunnels", n), "%.0f", false},
			row{k + ".server.total", fmt.Sprintf("server RSS MiB holding %d idle tunnels", n), "%.0f", false},
		)
	}
	return rs
}

// direct is the generator's own ceiling: one connection straight to the ORPort stand-in,
// no PT in between, median of three.
func direct(tgt *bench.Target, n int64) float64 {
	var rates []float64
	for range 3 {
		c, err := net.Dial("tcp", tgt.Addr())
		if err != nil {
			return 0
		}
		start := time.Now()
		err = bench.Xfer(c, 0, n, 0)
		c.Close()
		if err != nil {
			return 0
		}
		rates = append(rates, float64(n)/time.Since(start).Seconds()/1e6)
	}
	slices.Sort(rates)
	return rates[1]
}

func render(c config, suites []*suite, took time.Duration, bin, peer string, ceiling float64) string {
	var b strings.Builder
	mode := "full"
	if c.quick {
		mode = "quick"
	}
	fmt.Fprintf(&b, "# ptreactor load report\n\n")
	fmt.Fprintf(&b, "- date: %s; took %v; mode: %s; runs: %d (figures are medians)\n", time.Now().UTC().Format(time.RFC3339), took.Round(time.Second), mode, c.runs)
	fmt.Fprintf(&b, "- machine: %s, %d CPUs (client PT, server PT and this generator share them), %s\n", cpuModel(), runtime.NumCPU(), kernel())
	fmt.Fprintf(&b, "- ptreactor: %s (%s)\n", bin, version(bin, "-version"))
	if peer != "" {
		fmt.Fprintf(&b, "- obfs4proxy: %s (%s)\n", peer, version(peer, "-version"))
	}
	fmt.Fprintf(&b, "- bulk: %d MiB per measurement from the bridge side to the client, split over the tunnels; CPU from /proc/<pid>/stat utime+stime\n", c.bulkTotal>>20)
	fmt.Fprintf(&b, "- generator ceiling, the same transfer over plain loopback with no PT: %.0f MB/s\n", ceiling)
	fmt.Fprintf(&b, "- set-up: SOCKS5 connect + transport handshake + one round trip to the ORPort stand-in + close, for %v\n", c.hsTime)
	fmt.Fprintf(&b, "- idle: RSS growth after opening the tunnels (each proven by one round trip), over a warmed-up baseline\n\n")
	for _, s := range suites {
		fmt.Fprintf(&b, "## %s\n\n", s.title)
		fmt.Fprintf(&b, "| metric | %s | %s | ratio ptreactor/%s |\n|---|---:|---:|---:|\n", s.ours.name, s.peer.name, s.peer.name)
		for _, r := range rows(c, s) {
			a, aok := s.ours.median(r.key)
			p, pok := s.peer.median(r.key)
			cell := func(v float64, ok bool) string {
				if !ok {
					return "—"
				}
				return fmt.Sprintf(r.format, v)
			}
			ratio := "—"
			if aok && pok && p != 0 {
				ratio = fmt.Sprintf("%.2f", a/p)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.label, cell(a, aok), cell(p, pok), ratio)
		}
		b.WriteString("\n")
		for _, n := range s.notes {
			fmt.Fprintf(&b, "- note: %s\n", n)
		}
		for _, ct := range []*contestant{s.ours, s.peer} {
			for _, e := range ct.errs {
				fmt.Fprintf(&b, "- %s failed: %s\n", ct.name, oneLine(e))
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string {
	b, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	return "Linux " + strings.TrimSpace(string(b))
}

// version asks a binary for its version; a managed PT that ignores the flag would wait for
// tor's environment, so the call is bounded.
func version(bin, flag string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, flag)
	cmd.Stdin = nil
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		return "version unknown"
	}
	return strings.TrimSpace(oneLine(string(out)))
}
