package lifecycle

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// LevelNotice sits between slog's Info and Warn. Records at LevelNotice and above also go to
// tor as LOG lines (tor shows notices by default), so use it for the few events an operator
// wants in tor's log: start-up, the cipher in use, a drain. Per-connection events belong at
// Info or Debug, which reach only the log file.
const LevelNotice = slog.Level(2)

// parseLevel maps the -log-level names (tor's severities) to slog levels.
func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "error":
		return slog.LevelError, nil
	case "warning", "warn":
		return slog.LevelWarn, nil
	case "notice", "":
		return LevelNotice, nil
	case "info":
		return slog.LevelInfo, nil
	case "debug":
		return slog.LevelDebug, nil
	}
	return 0, fmt.Errorf("unknown log level %q (want error, warning, notice, info or debug)", s)
}

// severity is the name tor's LOG line uses for l.
func severity(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "error"
	case l >= slog.LevelWarn:
		return "warning"
	case l >= LevelNotice:
		return "notice"
	case l >= slog.LevelInfo:
		return "info"
	}
	return "debug"
}

// logOutput is shared by a logger and every logger derived from it with With/WithGroup.
type logOutput struct {
	level slog.Level // records below it are dropped
	scrub bool       // replace IP addresses with [scrubbed]
	msgs  *Messages  // LOG lines for records >= max(level, LevelNotice); may be nil

	mu   sync.Mutex
	file io.Writer // may be nil
}

// logHandler is ptreactor's slog.Handler: one text line per record to the log file, and a
// LOG line to tor for notices and above, both with IP addresses scrubbed unless
// -unsafe-logging was given.
type logHandler struct {
	out    *logOutput
	attrs  string // " k=v" pairs from WithAttrs, already formatted
	groups string // "g1.g2." prefix from WithGroup
}

func newLogger(out *logOutput) *slog.Logger { return slog.New(&logHandler{out: out}) }

func (h *logHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.out.level }

func (h *logHandler) Handle(_ context.Context, r slog.Record) error {
	buf := make([]byte, 0, 256)
	buf = append(buf, r.Message...)
	buf = append(buf, h.attrs...)
	r.Attrs(func(a slog.Attr) bool {
		buf = appendAttr(buf, h.groups, a)
		return true
	})
	text := string(buf)
	if h.out.scrub {
		text = scrubAddrs(text)
	}
	if h.out.file != nil {
		t := r.Time
		if t.IsZero() {
			t = time.Now()
		}
		line := make([]byte, 0, len(text)+40)
		line = t.UTC().AppendFormat(line, "2006-01-02T15:04:05.000Z")
		line = append(line, ' ')
		line = append(line, severity(r.Level)...)
		line = append(line, ' ')
		line = append(line, text...)
		line = append(line, '\n')
		h.out.mu.Lock()
		_, err := h.out.file.Write(line)
		h.out.mu.Unlock()
		if err != nil {
			return err
		}
	}
	if h.out.msgs != nil && r.Level >= LevelNotice {
		h.out.msgs.Log(severity(r.Level), text)
	}
	return nil
}

func (h *logHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	buf := []byte(h.attrs)
	for _, a := range as {
		buf = appendAttr(buf, h.groups, a)
	}
	return &logHandler{out: h.out, attrs: string(buf), groups: h.groups}
}

func (h *logHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &logHandler{out: h.out, attrs: h.attrs, groups: h.groups + name + "."}
}

// appendAttr formats a as " key=value", groups flattened into dotted keys.
func appendAttr(buf []byte, prefix string, a slog.Attr) []byte {
	v := a.Value.Resolve()
	if v.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "."
		}
		for _, ga := range v.Group() {
			buf = appendAttr(buf, prefix, ga)
		}
		return buf
	}
	if a.Key == "" && v.Any() == nil {
		return buf
	}
	buf = append(buf, ' ')
	buf = append(buf, prefix...)
	buf = append(buf, a.Key...)
	buf = append(buf, '=')
	var s string
	switch v.Kind() {
	case slog.KindString:
		s = v.String()
	case slog.KindTime:
		s = v.Time().UTC().Format(time.RFC3339Nano)
	default:
		if err, ok := v.Any().(error); ok && err != nil {
			s = err.Error()
		} else {
			s = v.String()
		}
	}
	if needsQuote(s) {
		return strconv.AppendQuote(buf, s)
	}
	return append(buf, s...)
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '=' || c == '"' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// scrubbed replaces every IP address in log text unless -unsafe-logging is on.
const scrubbed = "[scrubbed]"

// scrubAddrs replaces each IPv4 or IPv6 address in s, with or without a port, bracketed or
// not, by "[scrubbed]". It looks at maximal runs of hex digits, '.', ':', '[' and ']' that
// stand as words of their own and lets net/netip decide what is an address, so times
// ("22:20:01"), hex strings and sizes ("1.5") stay.
func scrubAddrs(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isAddrByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isAddrByte(s[j]) {
			j++
		}
		start, end := i, j
		// A run may carry punctuation: "addr:1.2.3.4", "to 1.2.3.4." or "1.2.3.4:80:".
		for start < end && (s[start] == '.' || (s[start] == ':' && (start+1 >= end || s[start+1] != ':'))) {
			start++
		}
		for end > start && (s[end-1] == '.' || (s[end-1] == ':' && (end-2 < start || s[end-2] != ':'))) {
			end--
		}
		if start < end && !(start > 0 && isWordByte(s[start-1])) && !(end < len(s) && isWordByte(s[end])) && isAddr(s[start:end]) {
			b.WriteString(s[last:start])
			b.WriteString(scrubbed)
			last = end
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isAddrByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':' || c == '[' || c == ']'
}

func isWordByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
}

func isAddr(s string) bool {
	if _, err := netip.ParseAddrPort(s); err == nil {
		return true
	}
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	_, err := netip.ParseAddr(s)
	return err == nil
}
