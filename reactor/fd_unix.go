//go:build unix

package reactor

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// connFromKept makes the kept descriptor of a paused end a net.Conn again, to be enrolled
// on its loop. The conn holds a duplicate; the caller still owns fd.
func connFromKept(fd int) (net.Conn, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(dup), "")
	defer f.Close()
	return net.FileConn(f)
}

// closeFD closes a kept descriptor.
func closeFD(fd int) { _ = unix.Close(fd) }
