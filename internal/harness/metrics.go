package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Samples are the values of one scrape, keyed by the sample's name and its labels sorted
// by name, as the text format writes them: `ptreactor_tunnels_total{role="server",transport="obfs4"}`,
// `go_goroutines`; a histogram gives name_count, name_sum and name_bucket{...,le="0.5"}.
type Samples map[string]float64

// Scrape reads the Prometheus text endpoint at addr over network ("tcp": host:port, "unix":
// a socket path) with prometheus/common's parser.
func Scrape(ctx context.Context, network, addr string) (Samples, error) {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	host := addr
	if network == "unix" {
		host = "metrics" // any name: the transport dials the socket
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: %s", addr, resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	s := Samples{}
	for name, f := range families {
		for _, m := range f.GetMetric() {
			switch {
			case m.GetCounter() != nil:
				s[sampleKey(name, m.GetLabel())] = m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				s[sampleKey(name, m.GetLabel())] = m.GetGauge().GetValue()
			case m.GetUntyped() != nil:
				s[sampleKey(name, m.GetLabel())] = m.GetUntyped().GetValue()
			case m.GetHistogram() != nil:
				h := m.GetHistogram()
				s[sampleKey(name+"_count", m.GetLabel())] = float64(h.GetSampleCount())
				s[sampleKey(name+"_sum", m.GetLabel())] = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					le := &dto.LabelPair{Name: strPtr("le"), Value: strPtr(strconv.FormatFloat(b.GetUpperBound(), 'g', -1, 64))}
					s[sampleKey(name+"_bucket", append(m.GetLabel(), le))] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return s, nil
}

func strPtr(s string) *string { return &s }

func sampleKey(name string, labels []*dto.LabelPair) string {
	if len(labels) == 0 {
		return name
	}
	l := append([]*dto.LabelPair(nil), labels...)
	sort.Slice(l, func(i, j int) bool { return l[i].GetName() < l[j].GetName() })
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte('{')
	for i, p := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, "%s=%q", p.GetName(), p.GetValue())
	}
	b.WriteByte('}')
	return b.String()
}
