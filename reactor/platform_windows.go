package reactor

import (
	"errors"
	"log/slog"
	"net"
)

// errWindows is why the reactor does not run on Windows; see the package comment.
var errWindows = errors.New("ptreactor does not run on Windows: gnet's Windows engine reads every connection without pause, so a tunnel's memory could not be bounded")

// Supported reports whether the reactor can run on this system: never on Windows.
func Supported() error { return errWindows }

// The descriptor functions exist so the package builds for Windows, where New refuses to
// run before any of them could be called.

func raiseFileLimit(*slog.Logger) (uint64, error) { return 0, errWindows }

func connFromKept(int) (net.Conn, error) { return nil, errWindows }

func closeFD(int) {}
