package report

import (
	"strings"
	"testing"

	"github.com/ptreactor/ptreactor/bench/results"
)

// TestTable checks a scenario table: a column per pair in contestant order, the baseline
// shown but not divided by, ratios of the first contestant to each other, [min–max] only
// when the runs differ, and a dash where a pair has no figure.
func TestTable(t *testing.T) {
	r := &Report{
		Title:       "t",
		Contestants: []Contestant{{Name: "a"}, {Name: "b"}},
		Scenarios:   []Scenario{{Name: "mixed", Description: "d"}},
		Figures: []results.Figure{
			results.Of("mixed", "b", "rtt_p99_ms", "ms", []float64{4, 5, 6}),
			results.Of("mixed", "a", "rtt_p99_ms", "ms", []float64{2, 2, 2}),
			results.Of("mixed", Baseline, "rtt_p99_ms", "ms", []float64{1}),
			results.Of("mixed", "a", "cpu_pct_client", "%", []float64{30}),
		},
		Charts: []Chart{{Name: "mixed_latency", Scenario: "mixed", Title: "lat"}},
	}
	var b strings.Builder
	if err := r.WriteMarkdown(&b, "charts"); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| metric | tunnels | variant | a | b | no PT | a / b |",
		"| 514-byte echo p99 (ms) |  |  | 2.00 | 5.00 [4.00–6.00] | 1.00 | 0.40 |",
		"| client CPU (%) |  |  | 30.0 | — | — | — |",
		"![lat](charts/mixed_latency.png)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
