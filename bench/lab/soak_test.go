package lab

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ptreactor/ptreactor/internal/pttest"
)

// TestFlatnessThresholds: the soak's descriptor judge passes a steady population with
// in-flight noise and fault dips, and fails one descriptor leaked per set-up, at the CI
// soak's rate (50/s, one sample a second for 3 minutes) and at the quick size's (20/s, 60
// samples over 20 s); the memory judge passes a breathing heap and fails a leak of 16 KiB
// per set-up at the CI rate.
func TestFlatnessThresholds(t *testing.T) {
	fdsJudge := func(v []float64) flatness {
		return flatness{"fds", func(i int) float64 { return v[i] }, 8, 0.01}
	}
	rssJudge := func(v []float64) flatness {
		return flatness{"rss_mib", func(i int) float64 { return v[i] }, 8, 0.25}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	series := func(n int, base, noise, perSample float64, dips bool) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = base + noise*(rng.Float64()*2-1) + perSample*float64(i)
			if dips && i%45 >= 40 { // a fault's shed set-ups every 45 samples
				v[i] -= 40
			}
		}
		return v
	}
	// steps climbs by step at each of at, as a heap reaching new peaks does.
	steps := func(n int, base float64, at []int, step float64) []float64 {
		v := make([]float64, n)
		for i := range v {
			v[i] = base
			for _, a := range at {
				if i >= a {
					v[i] += step
				}
			}
		}
		return v
	}
	for _, tc := range []struct {
		name   string
		judge  flatness
		n      int
		wantOK bool
	}{
		{"fds steady, CI", fdsJudge(series(180, 2200, 6, 0, true)), 180, true},
		{"fds leak 1 per set-up, CI", fdsJudge(series(180, 2200, 6, 50, true)), 180, false},
		{"fds steady, quick", fdsJudge(series(60, 220, 4, 0, false)), 60, true},
		{"fds leak 1 per set-up, quick", fdsJudge(series(60, 220, 4, 20.0/3, false)), 60, false},
		{"rss breathing, CI", rssJudge(series(180, 40, 3, 0, false)), 180, true},
		{"rss in steps, CI", rssJudge(steps(180, 22, []int{60, 100, 130, 165}, 3)), 180, true},
		{"rss leak 16 KiB per set-up, CI", rssJudge(series(180, 40, 3, 50*16.0/1024, false)), 180, false},
	} {
		second, last, allowed, ok := tc.judge.judge(tc.n)
		if ok != tc.wantOK {
			t.Errorf("%s: second third %.1f, last %.1f, allowed %.1f: flat %v, want %v", tc.name, second, last, allowed, ok, tc.wantOK)
		}
	}
	if _, _, _, ok := fdsJudge(make([]float64, 5)).judge(5); ok {
		t.Error("5 samples judged flat; too few to judge")
	}
}

// TestJudgeSetup: a set-up that failed overlapping a fault's window or its grace is
// excused and counted as the fault's; one that failed later is not; one that worked after
// the window counts as the server serving again, and one due early in the window that
// worked only after it as held up.
func TestJudgeSetup(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	f := &fault{name: "x", from: at(1000), to: at(2000)}
	g := &fault{name: "y", from: at(2800), to: at(2900)} // begins in f's grace
	faults := []*fault{f, g, {name: "not begun"}}
	fail := errors.New("failed")
	for _, tc := range []struct {
		due, ended int
		err        error
		excused    bool
	}{
		{900, 950, fail, false},   // before the window
		{900, 1100, fail, true},   // under way when it began
		{1500, 1510, fail, true},  // in it
		{2500, 2510, fail, true},  // in its grace
		{2850, 2860, fail, true},  // in its grace and in g's window: g's
		{4100, 4110, fail, false}, // after both graces
		{1200, 2050, nil, false},  // held up
		{4200, 4210, nil, false},  // serving again after both
		{1900, 2010, nil, false},  // due too late in the window to say
		{500, 520, nil, false},    // before
		{4300, 4300, nil, false},  // serving again after both
	} {
		if got := judgeSetup(faults, at(tc.due), at(tc.ended), tc.err); got != tc.excused {
			t.Errorf("set-up due %d ms, ended %d ms, err %v: excused %v, want %v", tc.due, tc.ended, tc.err, got, tc.excused)
		}
	}
	if f.failed != 3 || f.held != 1 || f.okAfter != 2 {
		t.Errorf("fault counted %d failed, %d held up, %d after; want 3, 1, 2", f.failed, f.held, f.okAfter)
	}
	if g.failed != 1 || g.okAfter != 2 {
		t.Errorf("the later fault counted %d failed, %d after; want 1, 2", g.failed, g.okAfter)
	}
}

// TestSoakFaults runs an 8-second soak of a ptreactor pair fed through the Extended ORPort
// stand-in, its goroutines read from its -metrics sockets: two cycles of faults (the stand-in restarted, the server's descriptor limit
// lowered), each of which must make set-ups fail or wait, and every check must pass,
// the SIGINT drain included.
func TestSoakFaults(t *testing.T) {
	bin := pttest.Binary(t)
	z := tiny
	z.SoakTime, z.SoakIdle, z.SoakRate = 8*time.Second, 20, 20
	cfg := Config{
		Contestants: []Contestant{{Name: "ptreactor", Server: bin, Client: bin, Metrics: true}},
		Size:        z, Scenarios: []string{"soak"}, Dir: t.TempDir(), ExtORPort: true,
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range res.Report.Failures {
		t.Errorf("failure: %s", f)
	}
	got := map[string]float64{}
	for _, f := range res.Report.Figures {
		if f.Scenario == "soak" && f.Pair == "ptreactor" {
			got[f.Metric] = f.Value
		}
	}
	for _, m := range []string{"extorport_restart", "fd_limit"} {
		t.Logf("%s: %v faults, %v set-ups failed, %v held up", m, got[m+"_count"], got[m+"_setups_failed"], got[m+"_setups_held_up"])
		if got[m+"_count"] != 2 || got[m+"_setups_failed"]+got[m+"_setups_held_up"] == 0 || got["check_"+m] != 1 {
			t.Errorf("%s: %v faults, %v set-ups failed, %v held up, check %v", m, got[m+"_count"], got[m+"_setups_failed"], got[m+"_setups_held_up"], got["check_"+m])
		}
	}
	n := 0
	for m, v := range got {
		if len(m) > 6 && m[:6] == "check_" {
			n++
			if v != 1 {
				t.Errorf("%s failed", m)
			}
		}
	}
	if n < 15 {
		t.Errorf("%d checks, want at least 15: %v", n, got)
	}
	// The goroutines came from the PTs' metrics sockets: a Go process has a handful at least.
	for _, side := range []string{"client", "server"} {
		if g := got["goroutines_second_third_"+side]; g < 4 {
			t.Errorf("%s: %v goroutines (second third's median)", side, g)
		}
	}
	if got["drain_setups_accepted"] != 0 || got["drain_tunnels_finished"] != float64(z.SoakIdle+z.SoakBulk) {
		t.Errorf("drain: %v set-ups accepted after SIGINT, %v tunnels finished", got["drain_setups_accepted"], got["drain_tunnels_finished"])
	}
}

// TestSleepAfterDeadline: once ctx has ended, sleep never returns nil, whatever d is (a
// timer of d <= 0 is ready at once, and select picks either of two ready cases).
func TestSleepAfterDeadline(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 1000 {
		for _, d := range []time.Duration{-time.Second, 0, time.Nanosecond} {
			if err := sleep(ctx, d); err == nil {
				t.Fatalf("try %d: sleep(ended ctx, %v) returned nil", i, d)
			}
		}
	}
	if err := sleep(context.Background(), -time.Second); err != nil {
		t.Fatalf("sleep(live ctx, -1s): %v", err)
	}
}

// TestOpenLoopStopsAtEnd: an open loop whose set-ups each take longer than its gap starts
// nothing after d, returns only when every set-up it started has ended, and counts their
// failures (its ctx outlives d, so none is taken for an interruption).
func TestOpenLoopStopsAtEnd(t *testing.T) {
	var mu sync.Mutex
	var last time.Time
	var running int
	dial := func(ctx context.Context) (net.Conn, error) {
		mu.Lock()
		last = time.Now()
		running++
		mu.Unlock()
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
		return nil, errors.New("refused")
	}
	start := time.Now()
	d := 300 * time.Millisecond
	res := openLoop(context.Background(), dial, 200, d, nil)
	mu.Lock()
	defer mu.Unlock()
	if last.After(start.Add(d + 20*time.Millisecond)) {
		t.Errorf("a set-up started %v after the loop's start; its length is %v", last.Sub(start), d)
	}
	if running != 0 {
		t.Errorf("%d set-ups still running when the loop returned", running)
	}
	if res.errs.total() == 0 || res.ok != 0 {
		t.Errorf("%d ok, %d errors; want every set-up failed and counted", res.ok, res.errs.total())
	}
}
