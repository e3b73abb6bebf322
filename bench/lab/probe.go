package lab

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/internal/harness"
)

// probeGarbage is how much random data a garbage probe sends: more than the longest obfs4
// client handshake (8192 bytes), so a server that waits for a full handshake has its answer.
const probeGarbage = 9000

// probeWait is how long a probe waits for the server to close on it.
const probeWait = time.Second

// probe measures genuine set-ups alone and then while probes hit the server: random garbage
// and replays of a recorded genuine handshake, alternately, at Size.ProbeRate.
func (m *run) probe(ctx context.Context) error {
	z := m.lab.cfg.Size
	replay, err := m.recordHandshake(ctx)
	if err != nil {
		return fmt.Errorf("recording a handshake: %w", err)
	}
	echo := func(c net.Conn) error {
		c.SetDeadline(time.Now().Add(tunnelTimeout))
		return bench.Xfer(c, cellSize, cellSize, m.lab.nextSeed())
	}
	var alone struct {
		ok  int
		cpu time.Duration
	}
	for _, variant := range []string{"alone", "probed"} {
		_, s0, err := m.sample()
		if err != nil {
			return err
		}
		var probes, closed atomic.Int64
		pctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		if variant == "probed" {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.probeLoop(pctx, z.ProbeRate, replay, &probes, &closed)
			}()
		}
		res := openLoop(ctx, m.dial, z.ProbeGenuine, z.ProbeTime, echo)
		stop()
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return err
		}
		_, s1, err := m.sample()
		if err != nil {
			return err
		}
		cpu := s1.CPU - s0.CPU
		asked := int(z.ProbeGenuine * z.ProbeTime.Seconds())
		m.add("probe", "handshakes_ok", "count", variant, 0, float64(res.ok))
		m.add("probe", "genuine_ok_pct", "%", variant, 0, 100*float64(res.ok)/float64(asked))
		m.percentiles("probe", "setup", variant, 0, res.hist)
		m.errors("probe", variant, 0, res.errs)
		if variant == "alone" {
			alone.ok, alone.cpu = res.ok, cpu
			continue
		}
		n := probes.Load()
		m.add("probe", "probes", "count", variant, 0, float64(n))
		m.add("probe", "probes_closed", "count", variant, 0, float64(closed.Load()))
		if n > 0 && alone.ok > 0 {
			genuine := time.Duration(float64(alone.cpu) * float64(res.ok) / float64(alone.ok))
			m.add("probe", "server_cpu_ms_per_probe", "ms", variant, 0, max(0, float64((cpu-genuine).Microseconds())/1000/float64(n)))
		}
	}
	return nil
}

// probeLoop sends probes straight to the server at rate until ctx ends: even ones random
// garbage, odd ones the replayed handshake. It counts those sent and those the server
// closed within probeWait.
func (m *run) probeLoop(ctx context.Context, rate float64, replay []byte, probes, closed *atomic.Int64) {
	var wg sync.WaitGroup
	defer wg.Wait()
	gap := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	for i := 0; ; i++ {
		if sleep(ctx, time.Until(start.Add(time.Duration(i)*gap))) != nil {
			return
		}
		payload := replay
		if i%2 == 0 {
			payload = make([]byte, probeGarbage)
			rand.Read(payload)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", m.p.Bridge, tunnelTimeout)
			if err != nil {
				return
			}
			defer c.Close()
			probes.Add(1)
			c.SetDeadline(time.Now().Add(probeWait))
			if _, err := c.Write(payload); err != nil {
				closed.Add(1)
				return
			}
			_, err = io.Copy(io.Discard, c)
			var ne net.Error
			if !(errors.As(err, &ne) && ne.Timeout()) {
				closed.Add(1)
			}
		}()
	}
}

// recordHandshake opens one genuine tunnel through a relay in front of the server that
// keeps what the client PT sent before the server's first byte: its handshake, to replay.
func (m *run) recordHandshake(ctx context.Context) ([]byte, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		s, err := net.DialTimeout("tcp", m.p.Bridge, tunnelTimeout)
		if err != nil {
			got <- nil
			return
		}
		defer s.Close()
		var mu sync.Mutex
		var hs []byte
		spoke := false
		go func() {
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 {
					mu.Lock()
					spoke = true
					mu.Unlock()
					if _, werr := c.Write(buf[:n]); werr != nil {
						break
					}
				}
				if err != nil {
					break
				}
			}
			c.Close()
		}()
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				mu.Lock()
				if !spoke {
					hs = append(hs, buf[:n]...)
				}
				mu.Unlock()
				if _, werr := s.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		mu.Lock()
		got <- hs
		mu.Unlock()
	}()
	dctx, cancel := context.WithTimeout(ctx, tunnelTimeout)
	defer cancel()
	c, err := harness.DialSOCKS(dctx, m.p.Client.Addr(m.p.Transport), ln.Addr().String(), m.p.SOCKSArgs)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(tunnelTimeout))
	err = bench.Xfer(c, cellSize, cellSize, m.lab.nextSeed())
	c.Close()
	if err != nil {
		return nil, err
	}
	select {
	case hs := <-got:
		if len(hs) == 0 {
			return nil, errors.New("the client sent nothing before the server answered")
		}
		return hs, nil
	case <-dctx.Done():
		return nil, dctx.Err()
	}
}
