package procstat

import (
	"os"
	"runtime"
	"testing"
	"time"
)

// TestReadSelf reads this test process, whose numbers it can move: CPU burnt, memory
// touched, a descriptor opened.
func TestReadSelf(t *testing.T) {
	pid := os.Getpid()
	a, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i := range buf {
		buf[i] = byte(i)
	}
	for start := time.Now(); time.Since(start) < 100*time.Millisecond; {
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := Read(pid)
	if err != nil {
		t.Fatal(err)
	}
	runtime.KeepAlive(buf)
	if b.CPU-a.CPU < 50*time.Millisecond {
		t.Errorf("CPU %v -> %v after 100ms of spinning", a.CPU, b.CPU)
	}
	if b.RSS-a.RSS < 48<<20 || b.PeakRSS < b.RSS {
		t.Errorf("RSS %d -> %d (peak %d) after touching 64 MiB", a.RSS, b.RSS, b.PeakRSS)
	}
	if b.FDs != a.FDs+1 {
		t.Errorf("descriptors %d -> %d after opening one", a.FDs, b.FDs)
	}
	if b.Threads < 1 {
		t.Errorf("threads %d", b.Threads)
	}
	if _, err := Read(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
	if m := ReadMachine(); m.Cores != runtime.NumCPU() || m.CPU == "" {
		t.Errorf("machine %+v", m)
	}
}
