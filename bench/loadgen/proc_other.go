//go:build !linux

package loadgen

// raiseFileLimit reports the limit as unknown on systems without Linux's rlimit types; the
// run is then not checked against it.
func raiseFileLimit() uint64 { return 0 }

// selfRSS and openDescriptors read /proc, which only Linux has; 0 leaves them out of
// the report.
func selfRSS() int64       { return 0 }
func openDescriptors() int { return 0 }
