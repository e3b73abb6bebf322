package harness

import "syscall"

// childAttr puts a child in a process group of its own, so Kill can end the child's own
// children too, and has the kernel kill it if the harness dies first (a test timeout), so it
// never outlives the harness.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
