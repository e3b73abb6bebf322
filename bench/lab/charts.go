package lab

import (
	"slices"

	"github.com/ptreactor/ptreactor/bench/report"
	"github.com/ptreactor/ptreactor/bench/results"
)

// charts draws what the report shows in pictures, from the figures (medians) and, for the
// set-up CDF, the soak and the burst, from the histograms and samples the figures summarize.
func (l *lab) charts(figs []results.Figure) []report.Chart {
	var out []report.Chart
	pairs := l.pairNames()
	byMetric := func(sc, metric, variant, pair string) (x, y []float64) {
		for _, f := range figs {
			if f.Scenario == sc && f.Metric == metric && f.Variant == variant && f.Pair == pair {
				x, y = append(x, float64(f.Tunnels)), append(y, f.Value)
			}
		}
		return x, y
	}
	has := func(sc string) bool { return slices.Contains(l.cfg.Scenarios, sc) }
	if has("bulk") {
		c := report.Chart{Name: "bulk_throughput", Scenario: "bulk", Title: "Bulk throughput against tunnels",
			X: "tunnels", Y: "MB/s (payload)", LogX: true}
		for i, p := range pairs {
			for j, v := range bulkVariants {
				x, y := byMetric("bulk", "mb_per_s", v.name, p)
				c.Lines = append(c.Lines, report.Line{Name: p + " " + v.name, X: x, Y: y, Colour: i, Style: j})
			}
		}
		out = append(out, c)
	}
	if has("idle") {
		c := report.Chart{Name: "idle_rss", Scenario: "idle", Title: "RSS against idle tunnels held",
			X: "tunnels", Y: "RSS (MiB)"}
		for i, p := range pairs {
			for j, side := range []string{"server", "client"} {
				x, y := byMetric("idle", "rss_mib_"+side, "", p)
				c.Lines = append(c.Lines, report.Line{Name: p + " " + side, X: x, Y: y, Colour: i, Style: j})
			}
		}
		out = append(out, c)
	}
	if has("churn") {
		c := report.Chart{Name: "setup_cdf", Scenario: "churn", Title: "Set-up latency CDF (open loop, all runs)",
			X: "set-up latency (ms)", Y: "fraction of set-ups", LogX: true, Fraction: true}
		for i, p := range pairs {
			if h := l.setupHist[p]; h != nil && h.count() > 0 {
				x, y := h.cdf()
				c.Lines = append(c.Lines, report.Line{Name: p, X: x, Y: y, Colour: i})
			}
		}
		out = append(out, c)
	}
	if has("mixed") {
		c := report.Chart{Name: "mixed_latency", Scenario: "mixed", Title: "514-byte echo latency under mixed load",
			X: "mostly idle tunnels (plus bulk tunnels)", Y: "round trip (ms)"}
		for i, p := range append(slices.Clone(pairs), report.Baseline) {
			for j, q := range []string{"p99", "p50"} {
				x, y := byMetric("mixed", "rtt_"+q+"_ms", "", p)
				c.Lines = append(c.Lines, report.Line{Name: p + " " + q, X: x, Y: y, Colour: i, Style: j})
			}
		}
		out = append(out, c)
	}
	if has("soak") {
		rss := report.Chart{Name: "soak_rss", Scenario: "soak", Title: "RSS during the soak", X: "seconds", Y: "RSS (MiB)"}
		fds := report.Chart{Name: "soak_fds", Scenario: "soak", Title: "Descriptors during the soak", X: "seconds", Y: "open descriptors"}
		for k, p := range pairs {
			series, ok := l.soakSeries[p]
			if !ok {
				continue
			}
			start := l.soakStart[p]
			for i, side := range []string{"client", "server"} {
				var t, r, f []float64
				for _, s := range series[i] {
					t = append(t, s.At.Sub(start).Seconds())
					r = append(r, mib(s.RSS))
					f = append(f, float64(s.FDs))
				}
				rss.Lines = append(rss.Lines, report.Line{Name: p + " " + side, X: t, Y: r, Colour: k, Style: i})
				fds.Lines = append(fds.Lines, report.Line{Name: p + " " + side, X: t, Y: f, Colour: k, Style: i})
			}
		}
		out = append(out, rss, fds)
	}
	if has("burst") {
		c := report.Chart{Name: "burst_rss", Scenario: "burst", Title: "RSS around a burst (first run; 0 is the close)",
			X: "seconds after the burst's connections closed", Y: "RSS (MiB)"}
		for k, p := range pairs {
			series, ok := l.burstSeries[p]
			if !ok {
				continue
			}
			closed := l.burstClose[p]
			for i, side := range []string{"client", "server"} {
				var t, r []float64
				for _, s := range series[i] {
					t = append(t, s.At.Sub(closed).Seconds())
					r = append(r, mib(s.RSS))
				}
				c.Lines = append(c.Lines, report.Line{Name: p + " " + side, X: t, Y: r, Colour: k, Style: i})
			}
		}
		out = append(out, c)
	}
	return out
}

func (l *lab) pairNames() []string {
	var s []string
	for _, c := range l.cfg.Contestants {
		s = append(s, c.Name)
	}
	return s
}
