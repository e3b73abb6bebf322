// Package report turns what ptbench measured into what people read: a Markdown report with
// one table per scenario (each contestant, and the ratios between the first and the
// others) and line charts drawn with gonum/plot, each written as PNG and SVG and embedded in
// the Markdown. It knows nothing of how figures are measured: it takes results.Figure
// records and chart series as they are.
package report

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ptreactor/ptreactor/bench/procstat"
	"github.com/ptreactor/ptreactor/bench/results"
)

// Contestant is one pair of binaries as the report introduces it.
type Contestant struct {
	Name           string
	Server, Client string // resolved paths
	ServerVersion  string // what the binary says of itself (ptreactor: the cipher kernel too)
	ClientVersion  string
}

// Report is everything one `ptbench lab` run writes.
type Report struct {
	Title       string
	Started     time.Time
	Took        time.Duration
	Machine     procstat.Machine
	Size        string
	Runs        int
	Command     string
	Contestants []Contestant
	// Scenarios says, per scenario in the order run, what it did (one paragraph).
	Scenarios []Scenario
	Figures   []results.Figure
	Charts    []Chart
	// Notes are further lines for the report's header.
	Notes []string
	// Failures are the errors that ended a run early, one line each.
	Failures []string
}

// Scenario is one section of the report.
type Scenario struct {
	Name        string
	Description string
}

// WriteMarkdown writes r as Markdown; chart images are referenced as chartDir/<name>.png.
func (r *Report) WriteMarkdown(w io.Writer, chartDir string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	fmt.Fprintf(&b, "- date: %s; took %v; size: %s; runs: %d (each figure is the median, [min–max] when runs > 1)\n",
		r.Started.UTC().Format(time.RFC3339), r.Took.Round(time.Second), r.Size, r.Runs)
	fmt.Fprintf(&b, "- machine: %s, %d cores, %s (both PTs and the load generator share the cores)\n", r.Machine.CPU, r.Machine.Cores, r.Machine.Kernel)
	if r.Command != "" {
		fmt.Fprintf(&b, "- command: `%s`\n", r.Command)
	}
	for _, c := range r.Contestants {
		fmt.Fprintf(&b, "- %s: server %s (%s), client %s (%s)\n", c.Name, c.Server, c.ServerVersion, c.Client, c.ClientVersion)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	b.WriteString("\n")
	names := r.pairNames()
	for _, sc := range r.Scenarios {
		fmt.Fprintf(&b, "## %s\n\n%s\n\n", sc.Name, sc.Description)
		writeTable(&b, r.scenarioFigures(sc.Name), names)
		for _, c := range r.Charts {
			if c.Scenario == sc.Name {
				fmt.Fprintf(&b, "![%s](%s)\n\n", c.Title, filepath.ToSlash(filepath.Join(chartDir, c.Name+".png")))
			}
		}
	}
	if len(r.Failures) > 0 {
		b.WriteString("## Failures\n\n")
		for _, f := range r.Failures {
			fmt.Fprintf(&b, "- %s\n", f)
		}
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// pairNames are the contestants in order, then any other pair the figures name (the
// no-PT baseline).
func (r *Report) pairNames() []string {
	var names []string
	for _, c := range r.Contestants {
		names = append(names, c.Name)
	}
	for _, f := range r.Figures {
		if !slices.Contains(names, f.Pair) {
			names = append(names, f.Pair)
		}
	}
	return names
}

func (r *Report) scenarioFigures(name string) []results.Figure {
	var fs []results.Figure
	for _, f := range r.Figures {
		if f.Scenario == name {
			fs = append(fs, f)
		}
	}
	return fs
}

// rowKey is what one table row is about: a metric for one variant and tunnel count.
type rowKey struct {
	metric, variant string
	tunnels         int
}

func writeTable(b *strings.Builder, figs []results.Figure, pairs []string) {
	var rows []rowKey
	cells := map[rowKey]map[string]results.Figure{}
	units := map[rowKey]string{}
	var present []string
	for _, f := range figs {
		k := rowKey{f.Metric, f.Variant, f.Tunnels}
		if cells[k] == nil {
			cells[k] = map[string]results.Figure{}
			rows = append(rows, k)
			units[k] = f.Unit
		}
		cells[k][f.Pair] = f
		if !slices.Contains(present, f.Pair) {
			present = append(present, f.Pair)
		}
	}
	if len(rows) == 0 {
		b.WriteString("No figures (see Failures).\n\n")
		return
	}
	var cols []string
	for _, p := range pairs {
		if slices.Contains(present, p) {
			cols = append(cols, p)
		}
	}
	// Ratios compare the first contestant with each other one; the baseline is not a
	// contestant but is shown.
	first := cols[0]
	var ratioCols []string
	for _, p := range cols[1:] {
		if p != Baseline {
			ratioCols = append(ratioCols, p)
		}
	}
	b.WriteString("| metric | tunnels | variant |")
	for _, p := range cols {
		fmt.Fprintf(b, " %s |", p)
	}
	for _, p := range ratioCols {
		fmt.Fprintf(b, " %s / %s |", first, p)
	}
	b.WriteString("\n|---|---:|---|")
	for range len(cols) + len(ratioCols) {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, k := range rows {
		tun := ""
		if k.tunnels > 0 {
			tun = fmt.Sprint(k.tunnels)
		}
		fmt.Fprintf(b, "| %s (%s) | %s | %s |", Label(k.metric), units[k], tun, k.variant)
		for _, p := range cols {
			f, ok := cells[k][p]
			if !ok {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(b, " %s |", cell(f))
		}
		for _, p := range ratioCols {
			a, aok := cells[k][first]
			o, ook := cells[k][p]
			if !aok || !ook || o.Value == 0 {
				b.WriteString(" — |")
				continue
			}
			fmt.Fprintf(b, " %.2f |", a.Value/o.Value)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

func cell(f results.Figure) string {
	s := num(f.Value)
	if f.Runs > 1 && f.Min != f.Max {
		s += " [" + num(f.Min) + "–" + num(f.Max) + "]"
	}
	return s
}

// num prints a figure with about three significant digits.
func num(v float64) string {
	a := math.Abs(v)
	switch {
	case v == 0:
		return "0"
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// Baseline is the pair name of figures measured with no PT in between.
const Baseline = "no PT"

// labels name the metrics in the tables; a metric without one is shown by its name.
var labels = map[string]string{
	"mb_per_s":                    "throughput",
	"mb_per_s_per_core":           "throughput per core of client+server CPU",
	"cpu_s_per_gib_client":        "client CPU per GiB",
	"cpu_s_per_gib_server":        "server CPU per GiB",
	"cpu_s_per_gib_loadgen":       "load generator CPU per GiB",
	"rss_kib_per_tunnel_client":   "client RSS per tunnel",
	"rss_kib_per_tunnel_server":   "server RSS per tunnel",
	"rss_mib_client":              "client RSS",
	"rss_mib_server":              "server RSS",
	"peak_rss_mib_client":         "client peak RSS (VmHWM)",
	"peak_rss_mib_server":         "server peak RSS (VmHWM)",
	"fds_client":                  "client descriptors",
	"fds_server":                  "server descriptors",
	"threads_client":              "client threads",
	"threads_server":              "server threads",
	"tunnels_held":                "tunnels held",
	"handshakes_ok":               "handshakes completed",
	"errors":                      "errors",
	"setups_per_s":                "set-ups per second",
	"offered_per_s":               "offered set-ups per second",
	"setup_p50_ms":                "set-up latency p50",
	"setup_p90_ms":                "set-up latency p90",
	"setup_p99_ms":                "set-up latency p99",
	"setup_p999_ms":               "set-up latency p99.9",
	"cpu_ms_per_setup_client":     "client CPU per set-up",
	"cpu_ms_per_setup_server":     "server CPU per set-up",
	"cpu_ms_per_setup_loadgen":    "load generator CPU per set-up",
	"rtt_p50_ms":                  "514-byte echo p50",
	"rtt_p90_ms":                  "514-byte echo p90",
	"rtt_p99_ms":                  "514-byte echo p99",
	"rtt_p999_ms":                 "514-byte echo p99.9",
	"rtt_added_p50_ms":            "echo p50 added by the PTs",
	"rtt_added_p99_ms":            "echo p99 added by the PTs",
	"echoes":                      "echoes timed",
	"cpu_pct_client":              "client CPU",
	"cpu_pct_server":              "server CPU",
	"probes":                      "probes sent",
	"probes_closed":               "probes the server closed within 1 s",
	"genuine_ok_pct":              "genuine tunnels that succeeded",
	"server_cpu_ms_per_probe":     "server CPU per probe",
	"setups_failed_by_faults":     "set-ups failed in the fault windows (expected)",
	"fds_leaked_client":           "client descriptors left at rest after the soak",
	"fds_leaked_server":           "server descriptors left at rest after the soak",
	"drain_tunnels_finished":      "tunnels that finished after SIGINT",
	"drain_setups_accepted":       "tunnels set up after SIGINT",
	"drain_exit_after_close_s":    "server exit after its last tunnel closed",
	"bytes_checked_mib":           "bytes moved and checked",
	"garbage_sent":                "garbage connections sent",
	"rss_above_before_mib_client": "client RSS above its level before the burst",
	"rss_above_before_mib_server": "server RSS above its level before the burst",
	"back_s_client":               "client back within 4 MiB of before after",
	"back_s_server":               "server back within 4 MiB of before after",
	"back_within_watch_client":    "client back within the watch (1) or not (0)",
	"back_within_watch_server":    "server back within the watch (1) or not (0)",
}

// Label is a metric's name in the tables.
func Label(metric string) string {
	if l, ok := labels[metric]; ok {
		return l
	}
	if strings.HasPrefix(metric, "errors_") {
		return "errors: " + strings.TrimPrefix(metric, "errors_")
	}
	if strings.HasPrefix(metric, "check_") {
		return "check: " + strings.TrimPrefix(metric, "check_") + " (1 passed)"
	}
	return metric
}

// WriteFiles writes DIR/report.md, DIR/results.jsonl and DIR/charts/*.{png,svg}.
func (r *Report) WriteFiles(dir string) error {
	charts := filepath.Join(dir, "charts")
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return err
	}
	for _, c := range r.Charts {
		if err := c.Draw(charts); err != nil {
			return fmt.Errorf("chart %s: %w", c.Name, err)
		}
	}
	if err := results.WriteFile(filepath.Join(dir, "results.jsonl"), r.Figures); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "report.md"))
	if err != nil {
		return err
	}
	if err := r.WriteMarkdown(f, "charts"); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
