package loadgen

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ptreactor/ptreactor/bench/results"
)

// Scenario is the scenario name of every figure a load run writes.
const Scenario = "load"

// Result is what one load run measured.
type Result struct {
	Bridges []*Bridge
	Conns   int // tunnels asked for
	Elapsed time.Duration
	// Filled is how long it took until Conns tunnels were held; 0 if they never were.
	Filled time.Duration

	Attempts     int64 // set-ups started
	HandshakesOK int64 // obfs4 handshakes completed
	Held         int64 // tunnels open when the run ended
	PeakHeld     int64
	Unfinished   int64                   // set-ups still in progress when the run ended, neither ok nor failed
	Setup        *hdrhistogram.Histogram // µs from the TCP connect to the obfs4 handshake done

	TorLink   bool
	TorLinkOK int64
	Link      *hdrhistogram.Histogram // µs from the obfs4 handshake done to tor's VERSIONS

	Errors      map[Kind]int64
	ErrorSample map[Kind]string // the first error of each kind, as the system said it

	RSS, BaseRSS int64 // bytes, this process, at the end and before the first tunnel
	Descriptors  int   // open in this process at the end
	Interrupted  bool  // the run was cut short by a signal
}

// result collects the counters once the scheduler has stopped.
func (g *Generator) result() *Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	r := &Result{
		Bridges:      g.cfg.Bridges,
		Conns:        g.cfg.Conns,
		Elapsed:      time.Since(g.started),
		Attempts:     g.attempts.Load(),
		HandshakesOK: g.ok.Load(),
		Held:         g.held.Load(),
		PeakHeld:     g.peak.Load(),
		Unfinished:   g.inflight.Load(),
		Setup:        copyHist(g.setup),
		TorLink:      g.cfg.TorLink,
		TorLinkOK:    g.linkOK.Load(),
		Link:         copyHist(g.link),
		Errors:       map[Kind]int64{},
		ErrorSample:  map[Kind]string{},
	}
	if !g.filledAt.IsZero() {
		r.Filled = g.filledAt.Sub(g.started)
	}
	for k, n := range g.errs {
		if n > 0 {
			r.Errors[Kind(k)] = n
			r.ErrorSample[Kind(k)] = g.sample[k]
		}
	}
	return r
}

func copyHist(h *hdrhistogram.Histogram) *hdrhistogram.Histogram {
	c := hdrhistogram.New(h.LowestTrackableValue(), h.HighestTrackableValue(), int(h.SignificantFigures()))
	c.Merge(h)
	return c
}

// ErrorCount is the number of failed tunnels of every kind.
func (r *Result) ErrorCount() int64 {
	var n int64
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// kinds returns the kinds that occurred, most frequent first.
func (r *Result) kinds() []Kind {
	ks := make([]Kind, 0, len(r.Errors))
	for k := range r.Errors {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if r.Errors[ks[i]] != r.Errors[ks[j]] {
			return r.Errors[ks[i]] > r.Errors[ks[j]]
		}
		return ks[i] < ks[j]
	})
	return ks
}

// SetupsPerSecond is the rate of completed handshakes while the tunnels were being opened:
// until Conns were held, or over the whole run if they never were.
func (r *Result) SetupsPerSecond() float64 {
	d := r.Filled
	if d == 0 {
		d = r.Elapsed
	}
	if d <= 0 {
		return 0
	}
	return float64(r.HandshakesOK) / d.Seconds()
}

// RSSPerTunnel is this process's memory growth per tunnel held, in bytes.
func (r *Result) RSSPerTunnel() float64 {
	if r.Held == 0 {
		return 0
	}
	return float64(r.RSS-r.BaseRSS) / float64(r.Held)
}

// Failure explains, in one line, a run in which no tunnel could be set up (or, with
// --tor-link, no link handshake completed); nil when the run did set tunnels up.
func (r *Result) Failure() error {
	if r.HandshakesOK > 0 && (!r.TorLink || r.TorLinkOK > 0) {
		return nil
	}
	addrs := make([]string, len(r.Bridges))
	for i, b := range r.Bridges {
		addrs[i] = b.Addr.String()
	}
	addr := strings.Join(addrs, ", ")
	ks := r.kinds()
	if len(ks) == 0 {
		if r.Interrupted {
			return fmt.Errorf("interrupted before any handshake with %s completed", addr)
		}
		return fmt.Errorf("no handshake with %s completed within the run (%d still in progress)", addr, r.Unfinished)
	}
	k := ks[0]
	what := map[Kind]string{
		Refused:          "refused every connection: nothing listens there, or it sheds load",
		Unreachable:      "is unreachable: no route to it",
		ConnectTimeout:   "did not accept a TCP connection within the timeout",
		Silent:           "accepted TCP but never answered the obfs4 handshake (silent): a wrong cert= gives exactly this, as does a server that is not obfs4",
		ClosedUnanswered: "accepted TCP, then closed without answering the obfs4 handshake (closed-unanswered): a wrong cert= after the bridge's stall, or not an obfs4 server",
		HandshakeTimeout: "began to answer but never completed the obfs4 handshake within the timeout",
		BadReply:         "answered with something that is not an obfs4 reply for this cert (bad-reply)",
		Reset:            "reset the connections",
		Closed:           "closed the connections",
		TorLinkTLS:       "set up obfs4 tunnels, but the TLS handshake with tor behind it failed",
		TorLinkCells:     "set up obfs4 tunnels, but what came back was not tor's link handshake",
		TorLinkTimeout:   "set up obfs4 tunnels, but tor's link handshake did not complete within the timeout",
		Local:            "could not be reached for a local reason",
	}[k]
	noun := "the bridge"
	if len(addrs) > 1 {
		noun = "the bridges"
	}
	return fmt.Errorf("%s %s %s (%d of %d attempts %s; first: %s)",
		noun, addr, what, r.Errors[k], r.Attempts, k, r.ErrorSample[k])
}

// ms converts a histogram value in µs to milliseconds.
func ms(us int64) float64 { return float64(us) / 1000 }

// percentiles that the report and the figures give.
var percentiles = []struct {
	name string
	q    float64
}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p99.9", 99.9}}

// Figures are the run's numbers as result figures named pair: one run, so Min and Max are
// the value itself.
func (r *Result) Figures(pair string) []results.Figure {
	one := func(metric, unit string, v float64) results.Figure {
		f := results.Of(Scenario, pair, metric, unit, []float64{v})
		f.Tunnels = r.Conns
		return f
	}
	figs := []results.Figure{
		one("handshakes_ok", "count", float64(r.HandshakesOK)),
		one("tunnels_held", "count", float64(r.Held)),
		one("tunnels_held_peak", "count", float64(r.PeakHeld)),
		one("setups_per_s", "1/s", r.SetupsPerSecond()),
	}
	lat := func(prefix string, h *hdrhistogram.Histogram) {
		if h.TotalCount() == 0 {
			return
		}
		for _, p := range percentiles {
			name := strings.ReplaceAll(p.name, ".", "")
			figs = append(figs, one(prefix+"_"+name+"_ms", "ms", ms(h.ValueAtQuantile(p.q))))
		}
	}
	lat("setup", r.Setup)
	if r.TorLink {
		figs = append(figs, one("tor_link_ok", "count", float64(r.TorLinkOK)))
		lat("tor_link", r.Link)
	}
	total := one("errors", "count", float64(r.ErrorCount()))
	total.Variant = "total"
	figs = append(figs, total)
	for _, k := range r.kinds() {
		f := one("errors", "count", float64(r.Errors[k]))
		f.Variant = k.String()
		figs = append(figs, f)
	}
	if r.Held > 0 && r.RSS > 0 {
		figs = append(figs, one("rss_kib_per_tunnel_client", "KiB", r.RSSPerTunnel()/1024))
	}
	return figs
}

// Summary is the human-readable report of the run, one aspect a line.
func (r *Result) Summary() string {
	var b strings.Builder
	line := func(label, format string, args ...any) {
		fmt.Fprintf(&b, "%-16s %s\n", label, fmt.Sprintf(format, args...))
	}
	for _, b := range r.Bridges {
		line("bridge", "%s", b)
	}
	state := ""
	if r.Interrupted {
		state = " (interrupted)"
	}
	line("run", "%.1f s%s", r.Elapsed.Seconds(), state)
	line("handshakes ok", "%d of %d attempts, %.0f/s while opening", r.HandshakesOK, r.Attempts, r.SetupsPerSecond())
	held := fmt.Sprintf("%d of %d wanted (peak %d)", r.Held, r.Conns, r.PeakHeld)
	if r.Filled > 0 {
		held += fmt.Sprintf(", all held after %.1f s", r.Filled.Seconds())
	}
	line("tunnels held", "%s", held)
	line("set-up latency", "%s", latencies(r.Setup))
	if r.TorLink {
		line("tor link ok", "%d", r.TorLinkOK)
		line("tor link", "%s (TLS and VERSIONS through the tunnel)", latencies(r.Link))
	}
	if len(r.Errors) == 0 {
		line("errors", "none")
	} else {
		var parts []string
		for _, k := range r.kinds() {
			parts = append(parts, fmt.Sprintf("%s %d", k, r.Errors[k]))
		}
		line("errors", "%s", strings.Join(parts, ", "))
		for _, k := range r.kinds() {
			line("  "+k.String(), "first: %s", r.ErrorSample[k])
		}
	}
	if r.Unfinished > 0 {
		line("unfinished", "%d set-ups still in progress at the end", r.Unfinished)
	}
	if r.RSS > 0 {
		per := ""
		if r.Held > 0 {
			per = fmt.Sprintf(", %.1f KiB per tunnel held", r.RSSPerTunnel()/1024)
		}
		line("load process", "RSS %.1f MiB (%.1f MiB before the first tunnel)%s, %d descriptors",
			float64(r.RSS)/(1<<20), float64(r.BaseRSS)/(1<<20), per, r.Descriptors)
	}
	return b.String()
}

func latencies(h *hdrhistogram.Histogram) string {
	if h.TotalCount() == 0 {
		return "none measured"
	}
	var parts []string
	for _, p := range percentiles {
		parts = append(parts, fmt.Sprintf("%s %.2f ms", p.name, ms(h.ValueAtQuantile(p.q))))
	}
	parts = append(parts, fmt.Sprintf("max %.2f ms", ms(h.Max())))
	return strings.Join(parts, "  ")
}
