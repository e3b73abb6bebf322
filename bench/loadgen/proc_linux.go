package loadgen

import (
	"os"

	"github.com/ptreactor/ptreactor/bench/procstat"
)

// raiseFileLimit lifts the soft descriptor limit to the hard one: the load process holds
// one descriptor per tunnel.
func raiseFileLimit() uint64 { return procstat.RaiseFileLimit() }

// selfRSS is this process's resident set in bytes, 0 if unknown.
func selfRSS() int64 {
	s, _ := procstat.Read(os.Getpid())
	return s.RSS
}

// openDescriptors counts this process's open descriptors.
func openDescriptors() int {
	n, _ := procstat.FDs(os.Getpid())
	return n
}
