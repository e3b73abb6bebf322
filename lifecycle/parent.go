package lifecycle

import (
	"os"
	"time"
)

// startPPID is the parent (tor) as it was when the process started.
var startPPID = os.Getppid()

// watchParent is the fallback end for a ptreactor whose stdin is not watched (pt-spec 3.4:
// PTs SHOULD notice that the parent has terminated): the returned channel is closed once
// the parent process has gone and ptreactor has been reparented, and the run then ends as
// on SIGTERM. (Reparenting is how a unix child learns of its parent's death; on Windows,
// where the reactor does not run, the parent ID never changes.)
func watchParent() <-chan struct{} {
	gone := make(chan struct{})
	go func() {
		for range time.Tick(time.Second) {
			if os.Getppid() != startPPID {
				close(gone)
				return
			}
		}
	}()
	return gone
}
