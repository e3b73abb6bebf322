//go:build !unix

package procstat

// RaiseFileLimit reports the limit as unknown (0) where there is no RLIMIT_NOFILE.
func RaiseFileLimit() uint64 { return 0 }
