// Package pollfault breaks the epoll instances of a process's event loops, for tests of
// what ptreactor does when an event loop dies under it: a real failure of the kernel
// interface the loop runs on, not a stand-in.
package pollfault

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Epolls returns the descriptors of this process that are epoll instances.
func Epolls() (map[int]bool, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	fds := map[int]bool{}
	for _, ent := range ents {
		fd, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		if l, err := os.Readlink(filepath.Join("/proc/self/fd", ent.Name())); err == nil && l == "anon_inode:[eventpoll]" {
			fds[fd] = true
		}
	}
	return fds, nil
}

// BreakNew replaces every epoll instance that is not in before (the Go runtime's own, taken
// by Epolls before the event loops started) with /dev/null, atomically, so the descriptor
// number stays taken: the loop's next epoll_wait fails with EINVAL. A loop blocked in
// epoll_wait at that moment fails at its next wake-up. It returns how many it broke.
func BreakNew(before map[int]bool) (int, error) {
	now, err := Epolls()
	if err != nil {
		return 0, err
	}
	null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(null)
	n := 0
	for fd := range now {
		if before[fd] {
			continue
		}
		if err := unix.Dup3(null, fd, unix.O_CLOEXEC); err != nil {
			return n, fmt.Errorf("dup3 onto epoll fd %d: %w", fd, err)
		}
		n++
	}
	return n, nil
}
