//go:build unix

package reactor

import (
	"log/slog"

	"golang.org/x/sys/unix"
)

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit (a bridge holds two fds
// per tunnel) and returns the limit in force. Where the kernel refuses the hard limit as a
// soft one (macOS caps it at kern.maxfilesperproc, which the Go runtime has already
// applied at start-up) the soft limit stays as it is. The field types of Rlimit differ
// between the systems (int64 on FreeBSD, uint64 elsewhere), hence the conversions.
func raiseFileLimit(log *slog.Logger) (uint64, error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur < lim.Max {
		want := lim
		want.Cur = lim.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &want); err == nil {
			lim = want
		} else {
			log.Debug("cannot raise the descriptor limit", "err", err, "soft", uint64(lim.Cur), "hard", uint64(lim.Max))
		}
	}
	return uint64(lim.Cur), nil
}
