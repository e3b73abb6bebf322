package loadgen

import (
	"os"
	"syscall"

	"github.com/ptreactor/ptreactor/bench"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit, as the reactor does for a
// bridge, and returns the limit in force (0 if it cannot be read). The load process holds
// one descriptor per tunnel.
func raiseFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want) == nil {
			lim = want
		}
	}
	return lim.Cur
}

// selfRSS is this process's resident set in bytes, 0 if unknown.
func selfRSS() int64 {
	n, _ := bench.RSS(os.Getpid())
	return n
}

// openDescriptors counts this process's open descriptors.
func openDescriptors() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	return len(ents)
}
