// Package lab is `ptbench lab`: it compares pairs of pluggable-transport binaries (any mix of
// ptreactor, obfs4proxy or anything else that speaks pt-spec) on this machine. Each pair is
// launched the way tor launches managed proxies (harness.StartPair: managed environment, the
// methods and the server's cert read from stdout) in front of an in-process ORPort stand-in
// that speaks the xfer protocol (bench.Target), and driven through the client's SOCKS port.
//
// A run measures every chosen scenario for every pair, the pairs alternating from run to run
// so that neither always goes first; each figure is the median over the runs with the
// extremes kept (results.Of). The scenarios are in files of their own: bulk, idle, churn,
// mixed, probe, soak, burst. Processes are measured from /proc (bench/procstat); the report and the
// charts are bench/report's job.
package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/procstat"
	"github.com/ptreactor/ptreactor/bench/report"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// Contestant is one pair of binaries: NAME=SERVER:CLIENT on the command line.
type Contestant struct {
	Name           string
	Server, Client string
	// Env is added to both processes' environment (the reference forwarder's switch).
	Env []string
	// Metrics says both binaries take ptreactor's -metrics flag: each is given a unix
	// socket beside its state directory, and the soak follows their go_goroutines there
	// instead of their threads.
	Metrics bool
}

// ParseContestant parses NAME=SERVER:CLIENT; a binary without a '/' is looked up in PATH.
// The special binary name "refpt" is this program re-executed as the reference forwarder
// (plain transport only), self being this program's path.
func ParseContestant(s, self string) (Contestant, error) {
	name, bins, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Contestant{}, fmt.Errorf("--pair %q: want NAME=SERVER:CLIENT", s)
	}
	server, client, ok := strings.Cut(bins, ":")
	if !ok || server == "" || client == "" {
		return Contestant{}, fmt.Errorf("--pair %q: want NAME=SERVER:CLIENT", s)
	}
	c := Contestant{Name: name, Server: server, Client: client}
	for _, b := range []*string{&c.Server, &c.Client} {
		if *b == "refpt" {
			*b = self
			if !slices.Contains(c.Env, bench.RefPTEnv+"=1") {
				c.Env = append(c.Env, bench.RefPTEnv+"=1")
			}
			continue
		}
		p, err := resolve(*b)
		if err != nil {
			return Contestant{}, fmt.Errorf("--pair %s: %w", name, err)
		}
		*b = p
	}
	return c, nil
}

func resolve(bin string) (string, error) {
	if !strings.Contains(bin, "/") {
		p, err := exec.LookPath(bin)
		if err != nil {
			return "", fmt.Errorf("%s not found in PATH", bin)
		}
		return p, nil
	}
	p, err := filepath.Abs(bin)
	if err != nil {
		return "", err
	}
	st, err := os.Stat(p)
	if err != nil {
		return "", fmt.Errorf("%s: no such file", bin)
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%s is not an executable file", bin)
	}
	return p, nil
}

// Scenarios are the scenario names in the order a run measures them.
var Scenarios = []string{"bulk", "idle", "churn", "mixed", "probe", "soak", "burst"}

// obfs4Only are the scenarios that need a transport with a handshake to fail, and why.
var obfs4Only = map[string]string{
	"probe": "it replays obfs4 handshakes",
	"burst": "half its connections are failed obfs4 handshakes",
}

// Config is one `ptbench lab` invocation.
type Config struct {
	Contestants []Contestant
	Transport   string // obfs4 (default) or plain
	Size        Size
	Runs        int
	Scenarios   []string
	// Duration is the soak's length (0: the size's).
	Duration time.Duration
	// Dir holds the PTs' state directories.
	Dir string
	// StartTimeout bounds a PT's wait for METHODS DONE.
	StartTimeout time.Duration
	// Progress, when set, is told of every step as it starts: done of total finished.
	Progress func(done, total int, step string)
	// Stderr receives the PTs' stderr (nil: discarded).
	Stderr io.Writer
	// Command is how the run was asked for, for the report.
	Command string
	// ExtORPort feeds the servers through an Extended ORPort stand-in that authenticates
	// them with SAFE_COOKIE, as a bridge's tor does, instead of a plain ORPort.
	ExtORPort bool
}

// Result is what Run measured.
type Result struct {
	Report   *report.Report
	Failures int
}

// lab is the state of one Run.
type lab struct {
	cfg     Config
	tgt     *bench.Target
	ext     *harness.ExtORPort // nil: the servers are fed by tgt as a plain ORPort
	samples *sampleSet
	seed    atomic.Uint64

	mu       sync.Mutex
	failures []string
	// setupHist is the open-loop churn latency of each contestant, merged over the runs
	// (the CDF chart).
	setupHist map[string]*histogram
	// soakSeries is each contestant's soak samples: client and server.
	soakSeries map[string][2][]procstat.Sample
	soakStart  map[string]time.Time
	// burstSeries is each contestant's RSS samples in its first burst, client and server,
	// and burstClose when that burst's connections were closed (the burst chart).
	burstSeries map[string][2][]procstat.Sample
	burstClose  map[string]time.Time
	// faultWindows are the soak's faults, from start to end plus faultGrace.
	faultWindows [][2]time.Time

	done, total int
	targetSeen  int // stand-in errors already reported
	// baseline is the no-PT echo latency of each run and load level.
	baseline map[[2]int]*histogram
}

// Run measures cfg. It returns an error only for what makes the comparison impossible (a
// binary that will not start as a PT, a pair whose first tunnel fails, an interruption);
// a scenario that fails later is recorded in the report's failures and the run goes on.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if len(cfg.Contestants) == 0 {
		return nil, errors.New("no --pair given")
	}
	if cfg.Transport == "" {
		cfg.Transport = "obfs4"
	}
	if cfg.Runs <= 0 {
		cfg.Runs = cfg.Size.Runs
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = 15 * time.Second
	}
	if len(cfg.Scenarios) == 0 {
		for _, s := range Scenarios {
			if _, only := obfs4Only[s]; !only || cfg.Transport == "obfs4" {
				cfg.Scenarios = append(cfg.Scenarios, s)
			}
		}
	}
	for _, s := range cfg.Scenarios {
		if why, only := obfs4Only[s]; only && cfg.Transport != "obfs4" {
			return nil, fmt.Errorf("the %s scenario needs --transport obfs4 (%s)", s, why)
		}
	}
	for _, s := range cfg.Scenarios {
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("unknown scenario %q (have %s)", s, strings.Join(Scenarios, ", "))
		}
	}
	seen := map[string]bool{}
	for _, c := range cfg.Contestants {
		if seen[c.Name] || c.Name == report.Baseline {
			return nil, fmt.Errorf("pair name %q used twice or reserved", c.Name)
		}
		seen[c.Name] = true
	}
	// The generator holds two descriptors per tunnel (the SOCKS side and the stand-in side).
	procstat.RaiseFileLimit()
	tgt, err := bench.NewTarget(false)
	if err != nil {
		return nil, err
	}
	defer tgt.Close()
	var ext *harness.ExtORPort
	if cfg.ExtORPort {
		if ext, err = harness.StartExtORPort(cfg.Dir, harness.ExtOROptions{Handler: tgt.Handle}); err != nil {
			return nil, err
		}
		defer ext.Close()
	}
	l := &lab{cfg: cfg, tgt: tgt, ext: ext, samples: &sampleSet{}, setupHist: map[string]*histogram{},
		soakSeries: map[string][2][]procstat.Sample{}, soakStart: map[string]time.Time{},
		burstSeries: map[string][2][]procstat.Sample{}, burstClose: map[string]time.Time{}}
	l.seed.Store(rand.Uint64() | 1)
	started := time.Now()
	rep := &report.Report{
		Title:   "ptbench lab: " + names(cfg.Contestants),
		Started: started, Machine: procstat.ReadMachine(), Size: cfg.Size.Name, Runs: cfg.Runs,
		Command: cfg.Command,
	}
	// Every pair is started and proven once before the long run, so that a bad binary or a
	// wrong cert is reported in seconds rather than after the first contestant's minutes.
	for _, c := range cfg.Contestants {
		p, err := l.start(ctx, c, "preflight")
		if err != nil {
			return nil, err
		}
		p.Stop(5 * time.Second)
		rep.Contestants = append(rep.Contestants, report.Contestant{
			Name: c.Name, Server: c.Server, Client: c.Client,
			ServerVersion: version(c.Server, c.Env), ClientVersion: version(c.Client, c.Env),
		})
	}
	l.total = l.countSteps()
	for r := range cfg.Runs {
		order := rotate(cfg.Contestants, r)
		for _, sc := range cfg.Scenarios {
			if sc == "soak" && r > 0 {
				continue // a soak is one long run per contestant
			}
			if err := l.scenario(ctx, sc, r, order); err != nil {
				return nil, err
			}
		}
	}
	l.step("done")
	rep.Took = time.Since(started)
	rep.Figures = l.samples.figures()
	rep.Charts = l.charts(rep.Figures)
	for _, sc := range cfg.Scenarios {
		rep.Scenarios = append(rep.Scenarios, report.Scenario{Name: sc, Description: describe(sc, cfg)})
	}
	rep.Failures = l.failures
	if ext != nil {
		ok, bad, excused := 0, 0, 0
		var first string
		for _, s := range ext.Sessions() {
			switch {
			case s.Okay:
				ok++
			case l.inFaultWindow(s.At):
				excused++
			default:
				bad++
				if first == "" {
					first = fmt.Sprintf("%+v", s)
				}
			}
		}
		rep.Notes = append(rep.Notes, fmt.Sprintf("servers fed through an Extended ORPort stand-in (SAFE_COOKIE): %d sessions authenticated, %d failed, %d more failed during the soak's faults (a server out of descriptors drops a session it has begun)", ok, bad, excused))
		if bad > 0 {
			l.failures = append(l.failures, fmt.Sprintf("%d Extended ORPort sessions failed (first: %s)", bad, first))
			rep.Failures = l.failures
		}
	} else {
		rep.Notes = append(rep.Notes, "servers fed through a plain ORPort stand-in")
	}
	return &Result{Report: rep, Failures: len(rep.Failures)}, nil
}

func (l *lab) countSteps() int {
	n := 0
	for r := range l.cfg.Runs {
		for _, sc := range l.cfg.Scenarios {
			switch {
			case sc == "soak" && r > 0:
			case sc == "mixed":
				n += len(l.cfg.Contestants) + 1
			default:
				n += len(l.cfg.Contestants)
			}
		}
	}
	return n
}

func (l *lab) step(desc string) {
	if l.cfg.Progress != nil {
		l.cfg.Progress(l.done, l.total, desc)
	}
	l.done++
}

// scenario measures one scenario for every contestant in run r.
func (l *lab) scenario(ctx context.Context, sc string, r int, order []Contestant) error {
	if sc == "mixed" {
		l.step(fmt.Sprintf("run %d/%d mixed, no PT", r+1, l.cfg.Runs))
		if err := l.mixedBaseline(ctx, r); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			l.fail(r, sc, report.Baseline, err)
		}
	}
	for _, c := range order {
		l.step(fmt.Sprintf("run %d/%d %s %s", r+1, l.cfg.Runs, sc, c.Name))
		err := l.measure(ctx, sc, r, c)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			var fatal *startError
			if errors.As(err, &fatal) {
				return err
			}
			l.fail(r, sc, c.Name, err)
		}
		// An upload that arrived short or corrupt is the stand-in's to see.
		errs := l.tgt.Errors()
		for _, e := range errs[min(l.targetSeen, len(errs)):] {
			l.fail(r, sc, c.Name, fmt.Errorf("ORPort stand-in: %w", e))
		}
		l.targetSeen = len(errs)
	}
	return nil
}

func (l *lab) measure(ctx context.Context, sc string, r int, c Contestant) error {
	p, err := l.start(ctx, c, fmt.Sprintf("%s-%d", sc, r))
	if err != nil {
		return err
	}
	defer p.Stop(5 * time.Second)
	m := &run{lab: l, c: c, p: p, r: r}
	if c.Metrics {
		m.metrics = metricsSockets(filepath.Join(l.cfg.Dir, c.Name, fmt.Sprintf("%s-%d", sc, r)))
	}
	switch sc {
	case "bulk":
		return m.bulk(ctx)
	case "idle":
		return m.idle(ctx)
	case "churn":
		return m.churn(ctx)
	case "mixed":
		return m.mixed(ctx)
	case "probe":
		return m.probe(ctx)
	case "soak":
		return m.soak(ctx)
	case "burst":
		return m.burst(ctx)
	}
	return fmt.Errorf("unknown scenario %q", sc)
}

// run is one contestant's measurement of one scenario.
type run struct {
	lab     *lab
	c       Contestant
	p       *harness.Pair
	r       int
	metrics [2]string // the PTs' -metrics sockets, when c.Metrics
}

// add records one run's value of a figure.
func (m *run) add(sc, metric, unit, variant string, tunnels int, v float64) {
	m.lab.samples.add(sc, m.c.Name, metric, unit, variant, tunnels, v)
}

func (l *lab) fail(r int, sc, pair string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := fmt.Sprintf("run %d, %s, %s: %s", r+1, sc, pair, oneLine(err.Error()))
	l.failures = append(l.failures, msg)
}

// startError is a pair that would not start or whose first tunnel failed: bad input, which
// ends the whole run.
type startError struct {
	pair string
	err  error
}

func (e *startError) Error() string { return "pair " + e.pair + ": " + oneLine(e.err.Error()) }
func (e *startError) Unwrap() error { return e.err }

// start launches c's server and client, then proves the pair with one checked round trip.
func (l *lab) start(ctx context.Context, c Contestant, sub string) (*harness.Pair, error) {
	sctx, cancel := context.WithTimeout(ctx, l.cfg.StartTimeout)
	defer cancel()
	spec := harness.PairSpec{
		ClientBin: c.Client, ServerBin: c.Server, ClientEnv: c.Env, ServerEnv: c.Env,
		Transport: l.cfg.Transport, Dir: filepath.Join(l.cfg.Dir, c.Name, sub), ORPort: l.tgt.Addr(),
	}
	if l.ext != nil {
		spec.ExtORPort, spec.CookieFile = l.ext.Addr, l.ext.CookieFile
	}
	if c.Metrics {
		sock := metricsSockets(spec.Dir)
		spec.ClientFlags, spec.ServerFlags = []string{"-metrics", sock[0]}, []string{"-metrics", sock[1]}
	}
	if l.cfg.Stderr != nil {
		spec.ClientStderr, spec.ServerStderr = l.cfg.Stderr, l.cfg.Stderr
	}
	p, err := harness.StartPair(sctx, spec)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &startError{c.Name, err}
	}
	conn, err := p.Dial(sctx)
	if err == nil {
		conn.SetDeadline(time.Now().Add(l.cfg.StartTimeout))
		err = bench.Xfer(conn, 4096, 4096, l.nextSeed())
		conn.Close()
	}
	if err != nil {
		p.Stop(5 * time.Second)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &startError{c.Name, fmt.Errorf("the first tunnel failed (%s: %v); with obfs4 a wrong cert makes every handshake fail", errorKind(err), err)}
	}
	return p, nil
}

// metricsSockets are the client's and the server's -metrics sockets for a pair whose
// state directories are under dir.
func metricsSockets(dir string) [2]string {
	return [2]string{filepath.Join(dir, "client.metrics"), filepath.Join(dir, "server.metrics")}
}

// nextSeed is a fresh non-zero xfer seed, so every transfer's bytes are checked.
func (l *lab) nextSeed() uint64 {
	for {
		if s := l.seed.Add(0x9e3779b97f4a7c15); s != 0 {
			return s
		}
	}
}

func rotate(cs []Contestant, r int) []Contestant {
	n := len(cs)
	out := make([]Contestant, 0, n)
	for i := range n {
		out = append(out, cs[(i+r)%n])
	}
	return out
}

func names(cs []Contestant) string {
	var s []string
	for _, c := range cs {
		s = append(s, c.Name)
	}
	return strings.Join(s, " vs ")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 500 {
		s = s[:500] + "…"
	}
	return s
}

// version asks a binary for its version (ptreactor adds the cipher kernel it chose). A
// binary that does not know the flag may wait for tor's environment, so the call is bounded.
func version(bin string, env []string) string {
	if slices.Contains(env, bench.RefPTEnv+"=1") {
		return "reference forwarder"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-version").Output()
	if err != nil && len(out) == 0 {
		return "version unknown"
	}
	return strings.TrimSpace(oneLine(string(out)))
}

// dialer opens one connection that carries the xfer protocol to the stand-in: a tunnel
// through a pair, or a straight TCP connection for the no-PT baseline.
type dialer func(ctx context.Context) (net.Conn, error)

func (m *run) dial(ctx context.Context) (net.Conn, error) { return m.p.Dial(ctx) }

func (l *lab) directDial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", l.tgt.Addr())
}
