// Package gnetprocs sizes a process's gnet event loops against the Go runtime's processors
// (Ps), and keeps one P out of the loops' reach.
//
// A gnet loop waits for events in epoll_wait (kevent on the BSDs) as a plain system call,
// not through the Go scheduler, so while it waits its P stays attached to it, in the
// system-call state, until sysmon takes the P back. In a quiet process sysmon looks only
// every 10 ms or so. With one loop per P, every P can sit in a loop's wait at once: then no
// thread watches Go's own network poller, and a goroutine that waits in it (an accept on a
// net.Listener, a dial, gnet's Enroll worker) runs only when sysmon next comes round, for
// each of those steps in turn. One P more than there are loops leaves a P idle, and the Go
// scheduler then always keeps a thread blocked in its poller, so those goroutines run at
// once.
//
// Measured with ptbench lab churn (ptreactor as client and server, 2 cores, 200 set-ups/s
// offered): set-up latency p90 15.4 → 3.4 ms and p99 30 → 6.2 ms; closed-loop set-ups per
// second 7–15 % higher.
package gnetprocs

import (
	"runtime"
	"sync"
)

// EventLoops returns how many gnet event loops the process should run: the number of Ps
// the Go runtime had before the first call (GOMAXPROCS, by default the CPUs this process
// may use). The first call raises GOMAXPROCS to one more than that, for the reason in the
// package doc; later calls return the same count and change nothing, so that every engine
// of one process agrees. Setting GOMAXPROCS turns off the runtime's own updates of it when
// the CPU quota changes; the count is then fixed for the life of the process.
func EventLoops() int { return eventLoops() }

var eventLoops = sync.OnceValue(func() int {
	n := runtime.GOMAXPROCS(0)
	runtime.GOMAXPROCS(n + 1)
	return n
})
