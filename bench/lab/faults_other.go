//go:build !linux

package lab

import "errors"

// lowerFileLimit needs prlimit(2), which only Linux has; the soak's other figures need
// Linux's /proc too.
func lowerFileLimit(pid, margin int) (used, limit int, restore func() error, err error) {
	return 0, 0, nil, errors.New("lowering another process's descriptor limit needs Linux (prlimit)")
}
