package reactor

import (
	"context"
	"fmt"
	"log/slog"
)

// gnetLogger routes gnet's own messages to the engine's slog logger. gnet's default logger
// writes to stdout, which is tor's control channel, so gnet must never run without it. gnet
// reports routine events at info level; they go to debug here, its warnings and errors stay.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) logf(level slog.Level, format string, args ...any) {
	if !g.l.Enabled(context.Background(), level) {
		return
	}
	g.l.Log(context.Background(), level, "gnet: "+fmt.Sprintf(format, args...))
}

func (g gnetLogger) Debugf(format string, args ...any) { g.logf(slog.LevelDebug, format, args...) }
func (g gnetLogger) Infof(format string, args ...any)  { g.logf(slog.LevelDebug, format, args...) }
func (g gnetLogger) Warnf(format string, args ...any)  { g.logf(slog.LevelWarn, format, args...) }
func (g gnetLogger) Errorf(format string, args ...any) { g.logf(slog.LevelError, format, args...) }

// Fatalf logs at error level; gnet's contract would have it exit the process, which is
// lifecycle's decision, not a library's.
func (g gnetLogger) Fatalf(format string, args ...any) { g.logf(slog.LevelError, format, args...) }
