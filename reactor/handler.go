package reactor

import (
	"github.com/panjf2000/gnet/v2"
)

// handler is the gnet event handler of an Engine. Every conn's context is the *end it is.
type handler struct {
	gnet.BuiltinEventEngine
	e *Engine
}

func (h *handler) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	x, ok := c.Context().(*end)
	if !ok {
		return nil, gnet.Close
	}
	t := x.t
	if t.ls == nil {
		t.ls = h.e.loopFor(c.EventLoop())
	}
	prev := x.st
	x.c = c
	x.st = endOpen
	x.written, x.drained = 0, 0
	x.closeAfter = false
	t.busy = x // x's own close waits for the return (gnetquirks.go)
	t.opened(x, prev)
	t.busy = nil
	if x.closeAfter {
		return nil, gnet.Close
	}
	return nil, gnet.None
}

func (h *handler) OnTraffic(c gnet.Conn) gnet.Action {
	x, ok := c.Context().(*end)
	if !ok {
		return gnet.Close
	}
	t := x.t
	t.busy = x
	action := t.traffic(x, c)
	t.busy = nil
	if x.closeAfter {
		return gnet.Close
	}
	return action
}

func (h *handler) OnClose(c gnet.Conn, err error) gnet.Action {
	x, ok := c.Context().(*end)
	if !ok || x.c != c {
		return gnet.None
	}
	if x.st == endPausing {
		// Taken off the loop on purpose: the socket lives on in x.fd.
		x.c = nil
		x.st = endPaused
		return gnet.None
	}
	if err != nil {
		h.e.log.Debug("connection closed", "err", err, "tor", x.isTor, "state", x.st, "phase", x.t.phase)
	}
	x.t.closed(x)
	return gnet.None
}
