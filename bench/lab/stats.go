package lab

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/results"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// figureKey is one figure: a metric of a scenario's variant at a tunnel count, for a pair.
type figureKey struct {
	scenario, pair, metric, unit, variant string
	tunnels                               int
}

// sampleSet collects every run's value of every figure, in the order figures first appear.
type sampleSet struct {
	order []figureKey
	runs  map[figureKey][]float64
}

// add records one run's value; a value that is not a finite number (a ratio over nothing
// measured) is no figure and is dropped.
func (s *sampleSet) add(scenario, pair, metric, unit, variant string, tunnels int, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	k := figureKey{scenario, pair, metric, unit, variant, tunnels}
	if s.runs == nil {
		s.runs = map[figureKey][]float64{}
	}
	if _, ok := s.runs[k]; !ok {
		s.order = append(s.order, k)
	}
	s.runs[k] = append(s.runs[k], v)
}

// figures are the medians, min and max of every figure, grouped by scenario.
func (s *sampleSet) figures() []results.Figure {
	var figs []results.Figure
	for _, sc := range Scenarios {
		for _, k := range s.order {
			if k.scenario != sc {
				continue
			}
			f := results.Of(k.scenario, k.pair, k.metric, k.unit, s.runs[k])
			f.Tunnels, f.Variant = k.tunnels, k.variant
			figs = append(figs, f)
		}
	}
	return figs
}

// histogram is a latency histogram in microseconds, 1 µs to 2 minutes, 3 significant
// digits: the percentiles of a tail are read from it without keeping every sample.
type histogram struct{ h *hdrhistogram.Histogram }

func newHistogram() *histogram { return &histogram{hdrhistogram.New(1, 120_000_000, 3)} }

func (h *histogram) record(d time.Duration) {
	_ = h.h.RecordValue(max(1, d.Microseconds()))
}

func (h *histogram) count() int64 { return h.h.TotalCount() }

// ms is the latency at quantile q (0..100) in milliseconds.
func (h *histogram) ms(q float64) float64 { return float64(h.h.ValueAtQuantile(q)) / 1000 }

func (h *histogram) merge(o *histogram) { h.h.Merge(o.h) }

// cdf is the cumulative distribution: latency in ms against the fraction of samples at or
// below it, one point per non-empty bucket.
func (h *histogram) cdf() (x, y []float64) {
	total := float64(h.h.TotalCount())
	var seen int64
	for _, b := range h.h.Distribution() {
		if b.Count == 0 {
			continue
		}
		seen += b.Count
		x = append(x, float64(b.To)/1000)
		y = append(y, float64(seen)/total)
	}
	return x, y
}

// percentiles records the latency percentiles of h as metrics prefix_p50_ms ... p999_ms.
func (m *run) percentiles(sc, prefix, variant string, tunnels int, h *histogram) {
	for _, q := range []struct {
		name string
		q    float64
	}{{"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9}} {
		m.add(sc, prefix+"_"+q.name+"_ms", "ms", variant, tunnels, h.ms(q.q))
	}
}

// errorKinds counts errors by what went wrong, keeping the first of each kind to show.
type errorKinds map[string]*kindCount

type kindCount struct {
	n     int
	first error
}

func (e errorKinds) add(err error) { e.addKind(errorKind(err), 1, err) }

func (e errorKinds) addKind(kind string, n int, first error) {
	if k := e[kind]; k != nil {
		k.n += n
		return
	}
	e[kind] = &kindCount{n, first}
}

func (e errorKinds) merge(o errorKinds) {
	for kind, k := range o {
		e.addKind(kind, k.n, k.first)
	}
}

func (e errorKinds) total() int {
	n := 0
	for _, k := range e {
		n += k.n
	}
	return n
}

// String is "N kind (first: error), ..." in the order of errorKindNames.
func (e errorKinds) String() string {
	var parts []string
	for _, kind := range errorKindNames {
		if k := e[kind]; k != nil {
			parts = append(parts, fmt.Sprintf("%d %s (first: %v)", k.n, kind, k.first))
		}
	}
	return strings.Join(parts, ", ")
}

// errorKindNames are the kinds errorKind tells apart, and "overload" (a set-up not started
// because too many were pending).
var errorKindNames = []string{"refused", "reset", "timeout", "eof", "socks", "corrupt", "overload", "other"}

// errors records the total as "errors" and each kind as errors_<kind>.
func (m *run) errors(sc, variant string, tunnels int, e errorKinds) {
	m.add(sc, "errors", "count", variant, tunnels, float64(e.total()))
	for _, kind := range errorKindNames {
		if k := e[kind]; k != nil {
			m.add(sc, "errors_"+kind, "count", variant, tunnels, float64(k.n))
		}
	}
}

// errorKind names what went wrong with a tunnel: refused, reset, timeout (the peer went
// silent), eof (closed early), socks (the client PT refused the request), corrupt (a byte that
// was not the one sent at its place), other.
func errorKind(err error) string {
	var se *harness.SOCKSError
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.As(err, &se):
		return "socks"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, bench.ErrCorrupt):
		return "corrupt"
	}
	return "other"
}
