package lab

import (
	"fmt"
	"time"
)

// Size scales every scenario. Quick runs everything in under a minute on two cores, to see
// that it works; standard is the `make bench` comparison, under ten minutes; full takes
// longer for steadier figures.
type Size struct {
	Name string
	Runs int

	BulkTunnels []int
	BulkBytes   int64 // payload per direction per measurement, split over the tunnels

	Idle      int // tunnels held
	IdleSteps int // RSS is sampled after each step of Idle/IdleSteps tunnels

	ChurnWorkers int           // closed loop: set-ups back to back per worker
	ChurnRates   []float64     // open loops: set-ups offered per second, one loop per rate
	ChurnTime    time.Duration // each loop's length

	MixedLoads    []int // mostly idle tunnels, each echoing a cell about once a second
	MixedBulk     int   // tunnels moving bulk data meanwhile
	MixedTime     time.Duration
	MixedInterval time.Duration // mean gap between one tunnel's echoes

	ProbeGenuine float64 // genuine set-ups per second
	ProbeRate    float64 // probes per second (garbage and replays alternately)
	ProbeTime    time.Duration

	SoakTime  time.Duration
	SoakIdle  int
	SoakRate  float64 // set-ups per second
	SoakBulk  int
	SoakChunk int64 // bytes per bulk transfer

	BurstConns int           // opened at once: half genuine tunnels, half garbage
	BurstHold  time.Duration // how long they are held before all are closed
	BurstWatch time.Duration // how long RSS is watched after the close
}

// Sizes are the presets by name.
var Sizes = map[string]Size{
	"quick": {
		Name: "quick", Runs: 1,
		BulkTunnels: []int{1, 8, 64, 256}, BulkBytes: 8 << 20,
		Idle: 300, IdleSteps: 3,
		ChurnWorkers: 8, ChurnRates: []float64{100}, ChurnTime: time.Second,
		MixedLoads: []int{50, 200}, MixedBulk: 2, MixedTime: 1500 * time.Millisecond, MixedInterval: 500 * time.Millisecond,
		ProbeGenuine: 20, ProbeRate: 40, ProbeTime: time.Second,
		SoakTime: 4 * time.Second, SoakIdle: 100, SoakRate: 20, SoakBulk: 1, SoakChunk: 1 << 20,
		BurstConns: 200, BurstHold: 500 * time.Millisecond, BurstWatch: 10 * time.Second,
	},
	"standard": {
		Name: "standard", Runs: 3,
		BulkTunnels: []int{1, 8, 64, 256}, BulkBytes: 128 << 20,
		Idle: 8000, IdleSteps: 4,
		ChurnWorkers: 32, ChurnRates: []float64{200}, ChurnTime: 4 * time.Second,
		MixedLoads: []int{500, 2000}, MixedBulk: 4, MixedTime: 6 * time.Second, MixedInterval: time.Second,
		ProbeGenuine: 50, ProbeRate: 100, ProbeTime: 4 * time.Second,
		SoakTime: 20 * time.Second, SoakIdle: 1000, SoakRate: 50, SoakBulk: 2, SoakChunk: 8 << 20,
		BurstConns: 500, BurstHold: time.Second, BurstWatch: 10 * time.Second,
	},
	"full": {
		Name: "full", Runs: 5,
		BulkTunnels: []int{1, 8, 64, 256}, BulkBytes: 1 << 30,
		Idle: 8000, IdleSteps: 8,
		ChurnWorkers: 64, ChurnRates: []float64{400, 1500}, ChurnTime: 10 * time.Second,
		MixedLoads: []int{500, 1000, 2000, 4000}, MixedBulk: 8, MixedTime: 15 * time.Second, MixedInterval: time.Second,
		ProbeGenuine: 100, ProbeRate: 200, ProbeTime: 10 * time.Second,
		SoakTime: time.Minute, SoakIdle: 2000, SoakRate: 100, SoakBulk: 4, SoakChunk: 16 << 20,
		BurstConns: 500, BurstHold: time.Second, BurstWatch: 15 * time.Second,
	},
}

// describe is a scenario's paragraph in the report.
func describe(sc string, cfg Config) string {
	z := cfg.Size
	switch sc {
	case "bulk":
		return fmt.Sprintf("%d MiB per direction per measurement, split over %v tunnels; up (client to ORPort), down (ORPort to client) and echo (both at once); every byte checked against what was sent at its place. CPU is user+system from /proc/<pid>/stat, the load generator's being ptbench's own (SOCKS clients, ORPort stand-in, checking); per core is MB/s for one core of client+server CPU.", z.BulkBytes>>20, z.BulkTunnels)
	case "idle":
		return fmt.Sprintf("%d tunnels opened (each proven by one round trip) and held, then each proven again; RSS growth per tunnel over a warmed-up baseline, and each PT's descriptors and threads.", z.Idle)
	case "churn":
		return fmt.Sprintf("open, handshake, one round trip, close: closed loop (%d workers back to back) and open loop (%s set-ups/s offered on a fixed schedule, latency counted from the scheduled time, so slowness shows as latency), %v each; latency from an HDR histogram.", z.ChurnWorkers, rateList(z.ChurnRates), z.ChurnTime)
	case "mixed":
		return fmt.Sprintf("a busy bridge's day: %v mostly idle tunnels each echoing a 514-byte message (one Tor cell) about every %v with jitter, while %d tunnels move bulk data flat out, for %v; the same load with no PT in between is measured in the same run, so the added latency is the PTs'.", z.MixedLoads, z.MixedInterval, z.MixedBulk, z.MixedTime)
	case "probe":
		return fmt.Sprintf("%.0f genuine set-ups/s for %v alone, then again while %.0f probes/s (random garbage and replays of a recorded genuine handshake, alternately) hit the server; server CPU per probe is what the probes added.", z.ProbeGenuine, z.ProbeTime, z.ProbeRate)
	case "soak":
		return fmt.Sprintf("%v of churn (%.0f set-ups/s), %d idle tunnels re-proven every few seconds and %d bulk tunnels, every byte checked, while the server PT is faulted in cycles (its Extended ORPort stand-in restarted, when it has one; its descriptor limit lowered to just above what it uses, then raised): set-ups that overlap a fault are counted apart, any other failure fails. RSS, descriptors and goroutines (threads without a metrics page) of each PT sampled every second and flat when the last third's median exceeds the second third's by at most 25 %% or 8 MiB, whichever is more (descriptors: 1 %% or 8; goroutines or threads: 10 %% or 8); descriptors at rest counted before and after; then a SIGINT drain of the server under load. One run per contestant.", cfg.soakTime(), z.SoakRate, z.SoakIdle, z.SoakBulk)
	case "burst":
		return fmt.Sprintf("%d connections opened at once, half genuine tunnels that each move %d KiB each way (checked), half %d bytes of random garbage straight at the server's port; held %v, all closed, then both PTs' RSS read every %v for %v. RSS before (after a warm-up and a settle), peak, and at half and the end of the watch; back_s is when RSS came within %d MiB of before and stayed there (the watch's length when it never did).", z.BurstConns, burstXfer>>10, probeGarbage, z.BurstHold, burstSample, z.BurstWatch, burstBack>>20)
	}
	return ""
}

// SoakTime is the soak's length: --duration, or the size's.
func (c Config) soakTime() time.Duration {
	if c.Duration > 0 {
		return c.Duration
	}
	return c.Size.SoakTime
}
