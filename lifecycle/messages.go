package lifecycle

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Messages is the one writer of tor's control channel, ptreactor's stdout. Lines are queued
// in order and written, one write per line, by a single goroutine, so lines from the
// reactor's log and from lifecycle never interleave, and no caller ever blocks on a pipe
// that tor has stopped reading or closed (tor closes it right after SIGTERM): a failed
// write marks the channel broken and later lines are dropped. Configuration lines wait for
// room in the queue; LOG and STATUS lines are dropped (and counted) when it is full.
type Messages struct {
	mu      sync.Mutex // orders enqueueing and guards closed
	q       chan []byte
	closed  bool
	done    chan struct{}
	broken  atomic.Bool
	dropped atomic.Uint64
}

// NewMessages starts the writer goroutine on w.
func NewMessages(w io.Writer) *Messages {
	m := &Messages{q: make(chan []byte, 1024), done: make(chan struct{})}
	go m.run(w)
	return m
}

func (m *Messages) run(w io.Writer) {
	defer close(m.done)
	for line := range m.q {
		if m.broken.Load() {
			continue
		}
		if _, err := w.Write(line); err != nil {
			m.broken.Store(true)
		}
	}
}

// line queues one message. keyword and args are joined by single spaces; in the args,
// every control character (NUL, CR and LF included) and every byte that is not valid UTF-8
// is replaced by U+FFFD, so one call is always one line and both parents can read it (Arti
// fails the whole launch on a line that is not UTF-8).
func (m *Messages) line(mayDrop bool, keyword string, args ...string) {
	n := len(keyword) + 1
	for _, a := range args {
		n += len(a) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, keyword...)
	for _, a := range args {
		b = append(b, ' ')
		for _, r := range a {
			b = appendVisible(b, r)
		}
	}
	b = append(b, '\n')

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		m.dropped.Add(1)
		return
	}
	if !mayDrop {
		m.q <- b
		return
	}
	select {
	case m.q <- b:
	default:
		m.dropped.Add(1)
	}
}

// Close stops accepting lines and waits up to timeout for the queued ones to be written.
// It reports whether everything queued was written before the deadline.
func (m *Messages) Close(timeout time.Duration) bool {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		close(m.q)
	}
	m.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-m.done:
		return !m.broken.Load()
	case <-t.C:
		return false
	}
}

// Dropped is the number of LOG/STATUS lines lost to a full queue or a closed channel.
func (m *Messages) Dropped() uint64 { return m.dropped.Load() }

// The messages of pt-spec section 3.3, one method each.

func (m *Messages) Version()                  { m.line(false, "VERSION", "1") }
func (m *Messages) VersionError()             { m.line(false, "VERSION-ERROR", "no-version") }
func (m *Messages) EnvError(msg string)       { m.line(false, "ENV-ERROR", nonEmpty(msg)) }
func (m *Messages) ProxyDone()                { m.line(false, "PROXY", "DONE") }
func (m *Messages) ProxyError(msg string)     { m.line(false, "PROXY-ERROR", nonEmpty(msg)) }
func (m *Messages) CMethodsDone()             { m.line(false, "CMETHODS", "DONE") }
func (m *Messages) SMethodsDone()             { m.line(false, "SMETHODS", "DONE") }
func (m *Messages) CMethod(name, addr string) { m.line(false, "CMETHOD", name, "socks5", addr) }
func (m *Messages) CMethodError(name, msg string) {
	m.line(false, "CMETHOD-ERROR", name, nonEmpty(msg))
}
func (m *Messages) SMethodError(name, msg string) {
	m.line(false, "SMETHOD-ERROR", name, nonEmpty(msg))
}

// SMethod reports a server listener; args is the already encoded ARGS value, "" for none.
func (m *Messages) SMethod(name, addr, args string) {
	if args == "" {
		m.line(false, "SMETHOD", name, addr)
		return
	}
	m.line(false, "SMETHOD", name, addr, "ARGS:"+args)
}

// Log sends one LOG line; severity is one of error, warning, notice, info, debug.
func (m *Messages) Log(severity, msg string) {
	m.line(true, "LOG", "SEVERITY="+severity, cstringArg("MESSAGE", msg))
}

// StatusVersion reports the implementation and its version, as goptlib's ReportVersion
// does, but with TRANSPORT= first. The version is the process's, not one transport's; the
// line names transport (the first one tor asked for) because parents that predate the
// version message require TRANSPORT= on every STATUS line: older Arti releases fail the
// whole launch without it, and tor before 0.4.8 drops the line. tor 0.4.8 and later read
// TYPE=version whatever else the line holds.
func (m *Messages) StatusVersion(transport, impl, version string) {
	m.line(false, "STATUS", "TRANSPORT="+transport, "TYPE=version", cstringArg("IMPLEMENTATION", impl), cstringArg("VERSION", version))
}

// Status sends a STATUS line for transport with the given key=value pairs (values quoted).
func (m *Messages) Status(transport string, kv ...string) {
	args := make([]string, 0, 1+len(kv)/2)
	args = append(args, "TRANSPORT="+transport)
	for i := 0; i+1 < len(kv); i += 2 {
		args = append(args, cstringArg(kv[i], kv[i+1]))
	}
	m.line(true, "STATUS", args...)
}

// StatusCount is one key of a TYPE=stats STATUS line and its value.
type StatusCount struct {
	Key   string // upper case letters and underscores
	Value int64
}

// StatusStats sends a TYPE=stats STATUS line for transport: each count as KEY=number, a
// bare value that tor and Arti both read as it is (no quoting needed or used).
func (m *Messages) StatusStats(transport string, counts ...StatusCount) {
	args := make([]string, 0, 2+len(counts))
	args = append(args, "TRANSPORT="+transport, "TYPE=stats")
	for _, c := range counts {
		args = append(args, c.Key+"="+strconv.FormatInt(c.Value, 10))
	}
	m.line(true, "STATUS", args...)
}

// cstringArg is the argument key="value" with value as a CString.
func cstringArg(key, value string) string {
	b := make([]byte, 0, len(key)+len(value)+3)
	b = append(b, key...)
	b = append(b, '=')
	return string(appendCString(b, value))
}

// nonEmpty keeps an error message a single non-empty argument text; tor complains about an
// empty one.
func nonEmpty(msg string) string {
	msg = strings.TrimSpace(msg)
	if msg == "" {
		return "unknown error"
	}
	return msg
}
