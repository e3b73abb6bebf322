package lifecycle

import (
	"log/slog"
	"os"
	"syscall"
	"time"
)

// startPPID is the parent (tor) as it was when the process started.
var startPPID = os.Getppid()

// watchParent is the fallback end for a ptreactor whose stdin is not watched (pt-spec 3.4:
// PTs SHOULD notice that the parent has terminated): once the parent process has gone and
// ptreactor has been reparented, it ends the run as SIGTERM would.
func watchParent(log *slog.Logger) {
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != startPPID {
				log.Info("parent process has gone")
				_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
				return
			}
		}
	}()
}
