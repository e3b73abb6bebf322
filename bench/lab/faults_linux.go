package lab

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lowerFileLimit sets pid's soft RLIMIT_NOFILE so that exactly margin descriptor numbers
// below it are free (the limit bounds the number a new descriptor gets, the lowest free one,
// not how many are open) and returns the descriptors open, the limit and the function that
// puts the old limit back.
func lowerFileLimit(pid, margin int) (used, limit int, restore func() error, err error) {
	var old unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &old); err != nil {
		return 0, 0, nil, fmt.Errorf("prlimit %d: %w", pid, err)
	}
	open, err := openFDs(pid)
	if err != nil {
		return 0, 0, nil, err
	}
	free := 0
	for limit < len(open)+margin && free < margin {
		if !open[limit] {
			free++
		}
		limit++
	}
	low := unix.Rlimit{Cur: min(uint64(limit), old.Cur), Max: old.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &low, nil); err != nil {
		return 0, 0, nil, fmt.Errorf("prlimit %d: %w", pid, err)
	}
	return len(open), int(low.Cur), func() error { return unix.Prlimit(pid, unix.RLIMIT_NOFILE, &old, nil) }, nil
}

// openFDs returns the set of pid's open descriptor numbers.
func openFDs(pid int) (map[int]bool, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return nil, err
	}
	open := make(map[int]bool, len(ents))
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			open[n] = true
		}
	}
	return open, nil
}
