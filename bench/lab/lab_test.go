package lab

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"image"
	_ "image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/bench/results"
	"github.com/ptreactor/ptreactor/internal/pttest"
)

// tiny is a size of seconds: every scenario, every code path, small numbers.
var tiny = Size{
	Name: "tiny", Runs: 1,
	BulkTunnels: []int{1, 4}, BulkBytes: 1 << 20,
	Idle: 40, IdleSteps: 2,
	ChurnWorkers: 4, ChurnRates: []float64{50, 25}, ChurnTime: 400 * time.Millisecond,
	MixedLoads: []int{10, 20}, MixedBulk: 1, MixedTime: 600 * time.Millisecond, MixedInterval: 200 * time.Millisecond,
	ProbeGenuine: 20, ProbeRate: 20, ProbeTime: 500 * time.Millisecond,
	SoakTime: 4 * time.Second, SoakIdle: 10, SoakRate: 10, SoakBulk: 1, SoakChunk: 256 << 10,
	BurstConns: 40, BurstHold: 200 * time.Millisecond, BurstWatch: 2 * time.Second,
}

// required are the metric names the issue asks results.jsonl to carry for every pair.
var required = []string{"mb_per_s", "cpu_s_per_gib_client", "cpu_s_per_gib_server", "cpu_s_per_gib_loadgen", "setups_per_s", "cpu_ms_per_setup_loadgen",
	"setup_p50_ms", "setup_p99_ms", "rtt_p50_ms", "rtt_p99_ms", "rtt_added_p99_ms",
	"rss_kib_per_tunnel_client", "rss_kib_per_tunnel_server", "tunnels_held", "handshakes_ok", "errors"}

// TestEveryScenario runs every scenario at the tiny size for a ptreactor pair and an
// obfs4proxy pair, and checks that the figures are there and agree with what was asked.
func TestEveryScenario(t *testing.T) {
	obfs4proxy, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy not installed (make deps): %v", err)
	}
	bin := pttest.Binary(t)
	cfg := Config{
		Contestants: []Contestant{
			{Name: "ptreactor", Server: bin, Client: bin},
			{Name: "obfs4proxy", Server: obfs4proxy, Client: obfs4proxy},
		},
		Size: tiny, Runs: 2, Dir: t.TempDir(),
	}
	var steps []string
	cfg.Progress = func(done, total int, step string) {
		// Two runs of bulk, idle, churn, probe and burst for each pair, mixed for each and
		// the no-PT baseline; one soak each; then the end.
		if done != len(steps) || total != 2*(5*2+3)+2 {
			t.Errorf("progress %d/%d at step %d", done, total, len(steps))
		}
		steps = append(steps, step)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Report.Failures {
		t.Errorf("failure: %s", f)
	}
	if len(steps) != 29 || steps[28] != "done" {
		t.Errorf("steps: %q", steps)
	}
	// Contestants alternate: the second run starts with the other one.
	if !strings.HasSuffix(steps[0], "bulk ptreactor") || !strings.HasSuffix(steps[15], "bulk obfs4proxy") {
		t.Errorf("steps do not alternate: %q", steps)
	}

	out := t.TempDir()
	if err := res.Report.WriteFiles(out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(out, "results.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	figs, err := results.Read(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	get := func(sc, pair, metric, variant string, tunnels int) float64 {
		t.Helper()
		for _, f := range figs {
			if f.Scenario == sc && f.Pair == pair && f.Metric == metric && f.Variant == variant && f.Tunnels == tunnels {
				if f.Runs < 1 || f.Min > f.Value || f.Value > f.Max {
					t.Errorf("%+v: median outside [min, max]", f)
				}
				return f.Value
			}
		}
		t.Errorf("no figure %s/%s/%s/%s/%d", sc, pair, metric, variant, tunnels)
		return -1
	}
	for _, pair := range []string{"ptreactor", "obfs4proxy"} {
		for _, m := range required {
			found := false
			for _, f := range figs {
				found = found || f.Pair == pair && f.Metric == m
			}
			if !found {
				t.Errorf("results.jsonl: %s has no %s", pair, m)
			}
		}
		// bulk: every byte asked for moved and checked, in every direction.
		for _, n := range tiny.BulkTunnels {
			per := max(tiny.BulkBytes/int64(n), 64<<10)
			for _, v := range bulkVariants {
				want := float64(int64(n)*(v.up+v.down)*per) / (1 << 20)
				if got := get("bulk", pair, "bytes_checked_mib", v.name, n); got != want {
					t.Errorf("%s bulk %d %s: %v MiB checked, asked %v", pair, n, v.name, got, want)
				}
				if e := get("bulk", pair, "errors", v.name, n); e != 0 {
					t.Errorf("%s bulk %d %s: %v errors", pair, n, v.name, e)
				}
				if r := get("bulk", pair, "mb_per_s", v.name, n); r <= 0 {
					t.Errorf("%s bulk %d %s: %v MB/s", pair, n, v.name, r)
				}
			}
		}
		// idle: a handshake per tunnel, every tunnel still there.
		if h, held := get("idle", pair, "handshakes_ok", "", tiny.Idle), get("idle", pair, "tunnels_held", "", tiny.Idle); h != float64(tiny.Idle) || held != h {
			t.Errorf("%s idle: %v handshakes, %v held, want %d", pair, h, held, tiny.Idle)
		}
		if fds := get("idle", pair, "fds_server", "", tiny.Idle); fds < float64(2*tiny.Idle) {
			t.Errorf("%s idle: server holds %v descriptors for %d tunnels", pair, fds, tiny.Idle)
		}
		// churn: each open loop completes every set-up offered.
		for _, rate := range tiny.ChurnRates {
			if h, want := get("churn", pair, "handshakes_ok", openVariant(rate), 0), rate*tiny.ChurnTime.Seconds(); h != want {
				t.Errorf("%s churn %s: %v set-ups, offered %v", pair, openVariant(rate), h, want)
			}
		}
		if e := get("churn", pair, "errors", "closed", 0); e != 0 {
			t.Errorf("%s churn closed: %v errors", pair, e)
		}
		// mixed: echoes were timed and the added latency is there.
		for _, k := range tiny.MixedLoads {
			if n := get("mixed", pair, "echoes", "", k); n < float64(k) {
				t.Errorf("%s mixed %d: %v echoes", pair, k, n)
			}
			if e := get("mixed", pair, "errors", "", k); e != 0 {
				t.Errorf("%s mixed %d: %v errors", pair, k, e)
			}
		}
		// probe: probes went out and every genuine set-up still succeeded.
		if p := get("probe", pair, "probes", "probed", 0); p < 5 {
			t.Errorf("%s probe: %v probes", pair, p)
		}
		if ok := get("probe", pair, "genuine_ok_pct", "probed", 0); ok != 100 {
			t.Errorf("%s probe: %v %% of genuine set-ups succeeded", pair, ok)
		}
		// soak: nothing failed, every idle tunnel survived, bytes were checked.
		if e := get("soak", pair, "errors", "", 0); e != 0 {
			t.Errorf("%s soak: %v errors", pair, e)
		}
		if h := get("soak", pair, "tunnels_held", "", tiny.SoakIdle); h != float64(tiny.SoakIdle) {
			t.Errorf("%s soak: %v of %d idle tunnels held", pair, h, tiny.SoakIdle)
		}
		if b := get("soak", pair, "bytes_checked_mib", "", 0); b <= 0 {
			t.Errorf("%s soak: %v MiB checked", pair, b)
		}
		// burst: every genuine tunnel and every garbage connection made it, and each PT's
		// RSS is there before, at its peak, at half and at the end of the watch.
		n := tiny.BurstConns
		if h, g := get("burst", pair, "handshakes_ok", "", n), get("burst", pair, "garbage_sent", "", n); h != float64(n/2) || g != float64(n-n/2) {
			t.Errorf("%s burst: %v genuine tunnels and %v garbage connections, want %d of each", pair, h, g, n/2)
		}
		if e := get("burst", pair, "errors", "", n); e != 0 {
			t.Errorf("%s burst: %v errors", pair, e)
		}
		for _, side := range []string{"client", "server"} {
			before, peak := get("burst", pair, "rss_mib_"+side, "before", n), get("burst", pair, "rss_mib_"+side, "peak", n)
			if !(0 < before && before <= peak) {
				t.Errorf("%s burst %s: RSS %v MiB before, %v at the peak", pair, side, before, peak)
			}
			for _, at := range []string{"+1s", "+2s"} {
				// Two runs: each median is their mean, so the difference holds for them too.
				rss, above := get("burst", pair, "rss_mib_"+side, at, n), get("burst", pair, "rss_above_before_mib_"+side, at, n)
				if !(0 < rss && rss <= peak) || math.Abs(rss-before-above) > 0.01 {
					t.Errorf("%s burst %s %s: RSS %v MiB, %v above before (%v), peak %v", pair, side, at, rss, above, before, peak)
				}
			}
			back, in := get("burst", pair, "back_s_"+side, "", n), get("burst", pair, "back_within_watch_"+side, "", n)
			if !(0 <= back && back <= tiny.BurstWatch.Seconds()) || (in != 0 && in != 1) || (in == 0 && back != tiny.BurstWatch.Seconds()) {
				t.Errorf("%s burst %s: back after %v s, within the watch %v", pair, side, back, in)
			}
		}
	}
	checkPercentiles(t, figs)
	checkCharts(t, filepath.Join(out, "charts"), 7)
	md, err := os.ReadFile(filepath.Join(out, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range append(Scenarios, "ptreactor / obfs4proxy", "charts/bulk_throughput.png", "no PT") {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("report.md does not mention %q", s)
		}
	}
}

// checkPercentiles checks that every p50 <= p90 <= p99 <= p99.9 set of a figure is ordered.
func checkPercentiles(t *testing.T, figs []results.Figure) {
	t.Helper()
	type key struct {
		sc, pair, prefix, variant string
		tunnels                   int
	}
	sets := map[key]map[string]float64{}
	for _, f := range figs {
		for _, q := range []string{"p50", "p90", "p99", "p999"} {
			prefix, ok := strings.CutSuffix(f.Metric, "_"+q+"_ms")
			if !ok || strings.Contains(prefix, "added") {
				continue
			}
			k := key{f.Scenario, f.Pair, prefix, f.Variant, f.Tunnels}
			if sets[k] == nil {
				sets[k] = map[string]float64{}
			}
			sets[k][q] = f.Value
		}
	}
	if len(sets) < 10 {
		t.Errorf("only %d percentile sets", len(sets))
	}
	for k, s := range sets {
		if len(s) != 4 || !(0 < s["p50"] && s["p50"] <= s["p90"] && s["p90"] <= s["p99"] && s["p99"] <= s["p999"]) {
			t.Errorf("%+v: percentiles %v", k, s)
		}
	}
}

// checkCharts checks that dir holds n charts, each a PNG that decodes and an SVG that
// parses as XML, none empty.
func checkCharts(t *testing.T, dir string, n int) {
	t.Helper()
	pngs, _ := filepath.Glob(filepath.Join(dir, "*.png"))
	if len(pngs) != n {
		t.Errorf("%d PNG charts, want %d: %v", len(pngs), n, pngs)
	}
	for _, p := range pngs {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		img, format, err := image.Decode(bytes.NewReader(b))
		if err != nil || format != "png" || img.Bounds().Dx() < 100 {
			t.Errorf("%s: %v %s", p, err, format)
		}
		svg := strings.TrimSuffix(p, ".png") + ".svg"
		if err := parseXML(svg); err != nil {
			t.Errorf("%s: %v", svg, err)
		}
	}
}

func parseXML(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	elems := 0
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok {
			if elems == 0 && se.Name.Local != "svg" {
				return fmt.Errorf("root element %q", se.Name.Local)
			}
			elems++
		}
	}
	if elems < 10 {
		return fmt.Errorf("%d elements", elems)
	}
	return nil
}

// TestExtORPort feeds both servers through the Extended ORPort stand-in: every tunnel's
// session authenticates with SAFE_COOKIE and the checked transfers still pass.
func TestExtORPort(t *testing.T) {
	obfs4proxy, err := exec.LookPath("obfs4proxy")
	if err != nil {
		t.Fatalf("obfs4proxy not installed (make deps): %v", err)
	}
	bin := pttest.Binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{
		Contestants: []Contestant{
			{Name: "ptreactor", Server: bin, Client: bin},
			{Name: "obfs4proxy", Server: obfs4proxy, Client: obfs4proxy},
		},
		Size: tiny, Scenarios: []string{"bulk", "churn"}, Dir: t.TempDir(), ExtORPort: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Report.Failures {
		t.Errorf("failure: %s", f)
	}
	var ok, bad int
	for _, n := range res.Report.Notes {
		fmt.Sscanf(n, "servers fed through an Extended ORPort stand-in (SAFE_COOKIE): %d sessions authenticated, %d failed", &ok, &bad)
	}
	// Each pair: a preflight tunnel, the bulk tunnels, the churn set-ups.
	if min := 2 * (1 + 1 + 4 + int((tiny.ChurnRates[0]+tiny.ChurnRates[1])*tiny.ChurnTime.Seconds())); ok < min || bad != 0 {
		t.Errorf("%d sessions authenticated (want at least %d), %d failed; notes %q", ok, min, bad, res.Report.Notes)
	}
}
