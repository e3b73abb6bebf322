// Package results is the record ptbench keeps of what it measured: one Figure per number,
// written as JSON lines so runs can be compared by a script, and read back by the report
// writer. Both `ptbench lab` and `ptbench load` write it.
package results

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// Figure is one measured number: the median of Runs runs, with the extremes kept.
type Figure struct {
	Scenario string  `json:"scenario"`          // bulk, idle, churn, mixed, probe, soak, load
	Pair     string  `json:"pair"`              // the contestant's name, e.g. ptreactor
	Metric   string  `json:"metric"`            // e.g. mb_per_s, setup_p99_ms
	Value    float64 `json:"value"`             // the median
	Unit     string  `json:"unit"`              // e.g. MB/s, ms, KiB
	Runs     int     `json:"runs"`              // how many runs Value is the median of
	Min      float64 `json:"min"`               // the smallest of the runs
	Max      float64 `json:"max"`               // the largest of the runs
	Tunnels  int     `json:"tunnels,omitempty"` // the tunnel count the figure is for, where one applies
	Variant  string  `json:"variant,omitempty"` // a scenario's sub-case, e.g. up, down, echo
}

// Of returns the Figure for the values of several runs: their median, min and max. An odd
// count gives the middle value, an even count the mean of the two middle ones.
func Of(scenario, pair, metric, unit string, runs []float64) Figure {
	f := Figure{Scenario: scenario, Pair: pair, Metric: metric, Unit: unit, Runs: len(runs)}
	if len(runs) == 0 {
		return f
	}
	s := slices.Clone(runs)
	slices.Sort(s)
	f.Min, f.Max = s[0], s[len(s)-1]
	if n := len(s); n%2 == 1 {
		f.Value = s[n/2]
	} else {
		f.Value = (s[n/2-1] + s[n/2]) / 2
	}
	return f
}

// Write appends figs to w, one JSON object per line.
func Write(w io.Writer, figs []Figure) error {
	enc := json.NewEncoder(w)
	for i := range figs {
		if err := enc.Encode(&figs[i]); err != nil {
			return err
		}
	}
	return nil
}

// WriteFile writes figs to path as JSON lines, replacing the file.
func WriteFile(path string, figs []Figure) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	if err := Write(bw, figs); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Read parses JSON lines written by Write.
func Read(r io.Reader) ([]Figure, error) {
	var figs []Figure
	dec := json.NewDecoder(r)
	for {
		var f Figure
		err := dec.Decode(&f)
		if err == io.EOF {
			return figs, nil
		}
		if err != nil {
			return figs, fmt.Errorf("results: figure %d: %w", len(figs)+1, err)
		}
		figs = append(figs, f)
	}
}
