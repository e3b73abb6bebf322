// Package promgauge reads one sample from a Prometheus text exposition (version 0.0.4), the
// format of a /metrics page: enough for ptbench to follow a gauge such as go_goroutines of a
// process that serves one, without the client library's parser.
package promgauge

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
)

// maxPage bounds what Read takes from a metrics page; a Go process's default registry
// writes under 10 KiB.
const maxPage = 1 << 20

// Read fetches url and returns the value of the sample named name (without labels).
func Read(ctx context.Context, url, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxPage))
	if err != nil {
		return 0, err
	}
	v, err := Parse(b, name)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", url, err)
	}
	return v, nil
}

// Parse returns the value of the first sample line of text whose metric name is name and
// which has no labels: "name value [timestamp]". Comment lines (# HELP, # TYPE) are skipped.
func Parse(text []byte, name string) (float64, error) {
	for len(text) > 0 {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		line = bytes.TrimSpace(line)
		rest, ok := bytes.CutPrefix(line, []byte(name))
		if !ok || len(rest) == 0 || (rest[0] != ' ' && rest[0] != '\t') {
			continue // another metric, one whose name name begins, or one with labels
		}
		f := bytes.Fields(rest)
		if len(f) < 1 || len(f) > 2 {
			return 0, fmt.Errorf("sample %q: want a value and at most a timestamp", line)
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil || math.IsNaN(v) {
			return 0, fmt.Errorf("sample %q: bad value", line)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no sample %s", name)
}
