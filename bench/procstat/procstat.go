// Package procstat reads what ptbench measures of a process under test from /proc: the CPU it
// has used, its current and peak resident memory, its open descriptors and its threads; and
// what the report says of the machine (CPU model, cores, kernel). It reads files only, so it
// can sample a process many times a second without disturbing it.
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat; it is 100 on every
// Linux ABI Go supports.
const clockTick = 100

// Sample is one reading of a process.
type Sample struct {
	At      time.Time
	CPU     time.Duration // user+system CPU used since the process started
	RSS     int64         // resident set size now, bytes (VmRSS)
	PeakRSS int64         // the largest RSS so far, bytes (VmHWM)
	FDs     int           // open descriptors
	Threads int
}

// Read samples pid.
func Read(pid int) (Sample, error) {
	s := Sample{At: time.Now()}
	var err error
	if s.CPU, err = CPUTime(pid); err != nil {
		return s, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	if s.RSS, err = statusKiB(b, "VmRSS:"); err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	if s.PeakRSS, err = statusKiB(b, "VmHWM:"); err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	s.RSS <<= 10
	s.PeakRSS <<= 10
	th, err := statusKiB(b, "Threads:")
	if err != nil {
		return s, fmt.Errorf("/proc/%d/status: %w", pid, err)
	}
	s.Threads = int(th)
	if s.FDs, err = FDs(pid); err != nil {
		return s, err
	}
	return s, nil
}

// statusKiB returns the first number after key in a /proc/<pid>/status text.
func statusKiB(b []byte, key string) (int64, error) {
	i := bytes.Index(b, []byte("\n"+key))
	if i < 0 {
		return 0, fmt.Errorf("no %s", key)
	}
	line := b[i+1+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return 0, fmt.Errorf("empty %s", key)
	}
	return strconv.ParseInt(f[0], 10, 64)
}

// CPUTime returns the user+system CPU time pid has used, from /proc/<pid>/stat.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces; fields resume after ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: short", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(u+st) * time.Second / clockTick, nil
}

// FDs counts pid's open descriptors.
func FDs(pid int) (int, error) {
	d, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer d.Close()
	n := 0
	for {
		names, err := d.Readdirnames(4096)
		n += len(names)
		if err != nil || len(names) == 0 {
			return n, nil
		}
	}
}

// Machine is what the report says of the box the figures come from.
type Machine struct {
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	Kernel string `json:"kernel"`
}

// ReadMachine describes this machine.
func ReadMachine() Machine {
	m := Machine{CPU: runtime.GOARCH, Cores: runtime.NumCPU(), Kernel: "Linux"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = "Linux " + strings.TrimSpace(string(b))
	}
	return m
}
