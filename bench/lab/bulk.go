package lab

import (
	"context"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/ptreactor/ptreactor/bench"
	"github.com/ptreactor/ptreactor/bench/procstat"
)

// bulk moves Size.BulkBytes per direction over each tunnel count, up, down and echo, on the
// same tunnels, every byte checked.
func (m *run) bulk(ctx context.Context) error {
	z := m.lab.cfg.Size
	for _, n := range z.BulkTunnels {
		conns, err := openTunnels(ctx, m.dial, n)
		if err != nil {
			return fmt.Errorf("opening %d tunnels: %w", n, err)
		}
		err = m.bulkOn(ctx, conns, max(z.BulkBytes/int64(n), 64<<10))
		closeAll(conns)
		if err != nil {
			return fmt.Errorf("%d tunnels: %w", n, err)
		}
	}
	return nil
}

// bulkVariants are the directions of a bulk measurement: bytes up and down per tunnel as
// fractions of the payload.
var bulkVariants = []struct {
	name     string
	up, down int64
}{{"up", 1, 0}, {"down", 0, 1}, {"echo", 1, 1}}

func (m *run) bulkOn(ctx context.Context, conns []net.Conn, per int64) error {
	n := len(conns)
	defer interruptible(ctx, conns)()
	for _, v := range bulkVariants {
		up, down := v.up*per, v.down*per
		c0, s0, err := m.sample()
		if err != nil {
			return err
		}
		g0, err := loadgenCPU()
		if err != nil {
			return err
		}
		start := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		errs := errorKinds{}
		var moved int64
		var first error
		for _, c := range conns {
			wg.Add(1)
			seed := m.lab.nextSeed()
			go func() {
				defer wg.Done()
				c.SetDeadline(time.Now().Add(5 * time.Minute))
				err := bench.Xfer(c, up, down, seed)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs.add(err)
					if first == nil {
						first = err
					}
					return
				}
				moved += up + down
			}()
		}
		wg.Wait()
		elapsed := time.Since(start)
		c1, s1, err := m.sample()
		if err != nil {
			return err
		}
		g1, err := loadgenCPU()
		if err != nil {
			return err
		}
		m.errors("bulk", v.name, n, errs)
		if first != nil {
			return fmt.Errorf("%s: %s: %w", v.name, errorKind(first), first)
		}
		gib := float64(moved) / (1 << 30)
		cc, sc := (c1.CPU - c0.CPU).Seconds(), (s1.CPU - s0.CPU).Seconds()
		m.add("bulk", "mb_per_s", "MB/s", v.name, n, float64(moved)/elapsed.Seconds()/1e6)
		m.add("bulk", "cpu_s_per_gib_client", "s/GiB", v.name, n, cc/gib)
		m.add("bulk", "cpu_s_per_gib_server", "s/GiB", v.name, n, sc/gib)
		m.add("bulk", "cpu_s_per_gib_loadgen", "s/GiB", v.name, n, (g1-g0).Seconds()/gib)
		if cc+sc > 0 {
			m.add("bulk", "mb_per_s_per_core", "MB/s", v.name, n, float64(moved)/1e6/(cc+sc))
		}
		m.add("bulk", "bytes_checked_mib", "MiB", v.name, n, float64(moved)/(1<<20))
	}
	return nil
}

// sample reads both PTs of the pair.
func (m *run) sample() (client, server procstat.Sample, err error) {
	if client, err = procstat.Read(m.p.Client.Pid()); err != nil {
		return client, server, fmt.Errorf("client PT: %w", err)
	}
	if server, err = procstat.Read(m.p.Server.Pid()); err != nil {
		return client, server, fmt.Errorf("server PT: %w", err)
	}
	return client, server, nil
}

// loadgenCPU is the user+system CPU this process (the SOCKS clients, the ORPort stand-in and
// the byte checking) has used: it shares the cores with the PTs, so the report shows how
// much of the machine it took.
func loadgenCPU() (time.Duration, error) {
	cpu, err := procstat.CPUTime(os.Getpid())
	if err != nil {
		return 0, fmt.Errorf("load generator: %w", err)
	}
	return cpu, nil
}
