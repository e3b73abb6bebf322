//go:build unix

package procstat

import "syscall"

// RaiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit and returns the limit in
// force (0 if it cannot be read). A load generator holds a descriptor or two per tunnel,
// and the PTs it starts inherit the limit, as tor's children would.
func RaiseFileLimit() uint64 {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0
	}
	if l.Cur < l.Max {
		want := l
		want.Cur = l.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			l = want
		}
	}
	return uint64(l.Cur) // int64 on FreeBSD
}
