//go:build !unix

package obfs4

import "time"

// processCPU reports false: the benchmarks' CPU figure needs getrusage.
func processCPU() (time.Duration, bool) { return 0, false }
