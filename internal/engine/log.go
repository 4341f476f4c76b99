package engine

import (
	"io"
	"log/slog"
	"os"

	"golang.org/x/term"
)

// NewLogger is every mode's logger on w at LOG_LEVEL (info when the level is not one of
// debug, info, warn, error), in LOG_FORMAT: JSON lines, or text lines for a person;
// "auto" (or "") writes text when w is a terminal and JSON otherwise (containers, Lambda,
// files and pipes, which log collectors parse).
func NewLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" || (format != "json" && IsTerminal(w)) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// IsTerminal says whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
