//go:build unix && !linux

package harness

import "syscall"

// childAttr puts a child in a process group of its own, so Kill can end the child's own
// children too. These systems have no parent-death signal: a child outlives a harness that
// is killed, so the harness's own Stop and Kill are its only end.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
