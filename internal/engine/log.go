package engine

import (
	"io"
	"log/slog"
)

// NewLogger is every mode's logger: JSON lines on w at LOG_LEVEL (info when the level
// is not one of debug, info, warn, error).
func NewLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
