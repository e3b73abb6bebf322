//go:build unix

package reactor

// Supported reports whether the reactor can run on this system: nil on the epoll and
// kqueue systems, whose gnet engines give the descriptor duplicate a pause needs.
func Supported() error { return nil }
