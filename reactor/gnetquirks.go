package reactor

// This file is where the tunnel code meets three behaviours of gnet v2.9.7 that its API
// does not make obvious (read in its connection_unix.go and eventloop_unix.go). Tunnel code
// discards input only through the functions here, and closes a conn either by its own
// callback's gnet.Close or through closeEnd.
//
//   - Conn.Discard(n) with n <= 0 discards the whole inbound buffer, not nothing. A codec
//     that consumed 0 bytes (a partial frame, an incomplete SOCKS request) must leave
//     them: discard(c, 0) does nothing, and discardAll says when everything goes.
//   - A conn that closes drops its unread input with it (its inbound buffer is released
//     in the close), and writes its outbound buffer once, dropping what the socket does not
//     take. That is why a paused end carries its partial frame (appendUnread, pause.go)
//     and may only be paused with nothing queued outbound.
//   - EventLoop.Close(c) runs OnClose(c) synchronously, before it returns; so does a
//     Conn.Write that fails. A tunnel event may therefore find an end closed under it, and
//     an end must not be closed from inside its own callback: gnet goes on using the conn
//     when the callback returns (after OnTraffic it stores the unread input in the conn's
//     inbound buffer, after OnOpen it updates the conn's poller registration). The handler
//     marks the end whose callback runs (tunnel.busy); closeEnd defers that end's close to
//     the callback's return (closeAfter, answered with gnet.Close).

import "github.com/panjf2000/gnet/v2"

// discard drops the first n bytes of c's input; n == 0 drops nothing.
func discard(c gnet.Conn, n int) {
	if n > 0 {
		_, _ = c.Discard(n)
	}
}

// discardAll drops all of c's buffered input.
func discardAll(c gnet.Conn) { _, _ = c.Discard(-1) }

// appendUnread appends c's unread input to dst, before a close that would drop it.
func appendUnread(dst []byte, c gnet.Conn) []byte {
	if rest, _ := c.Peek(-1); len(rest) > 0 {
		dst = append(dst, rest...)
	}
	return dst
}

// closeEnd closes x's conn now, or as soon as its own callback returns.
func (t *tunnel) closeEnd(x *end) {
	if x.c == nil || x.st == endClosed || x.st == endPausing {
		return
	}
	if t.busy == x {
		x.closeAfter = true
		return
	}
	_ = t.ls.el.Close(x.c)
}
