package logs

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

// maxLine bounds one engine record; a longer line is split into several
// records (the pieces keep the first one's level) so that runaway output
// cannot grow a buffer without limit.
const maxLine = 64 << 10

// EngineWriter returns a writer for the engine's stdout or stderr: the bytes
// are split into lines, each logged with "source":"engine" at a level guessed
// from its text (ERROR or CRITICAL → error, WARN → warn, else info). An
// unterminated line waits for the rest of it (written out by Close). Each
// call returns a writer with its own line buffer: use one per stream.
func (l *Logs) EngineWriter() io.Writer {
	w := &engineWriter{l: l}
	l.mu.Lock()
	l.writers = append(l.writers, w)
	l.mu.Unlock()
	return w
}

type engineWriter struct {
	l       *Logs
	mu      sync.Mutex
	buf     []byte
	cont    bool          // buf continues a line already partly logged
	contLvl zerolog.Level // that line's level
}

// Write implements io.Writer; it never fails.
func (w *engineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		seg, rest, eol := p, []byte(nil), false
		if i := bytes.IndexByte(p, '\n'); i >= 0 {
			seg, rest, eol = p[:i], p[i+1:], true
		}
		p = rest
		for len(w.buf)+len(seg) > maxLine {
			k := maxLine - len(w.buf)
			// Cut on a character boundary when one is near.
			for j := k; j > 0 && j > k-utf8.UTFMax; j-- {
				if utf8.RuneStart(seg[j]) {
					k = j
					break
				}
			}
			w.buf = append(w.buf, seg[:k]...)
			seg = seg[k:]
			w.emit(false)
		}
		w.buf = append(w.buf, seg...)
		if eol {
			w.emit(true)
		}
	}
	return n, nil
}

// flush logs an unterminated line.
func (w *engineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(true)
	}
}

// emit logs buf as one record; end tells whether the line ends here.
func (w *engineWriter) emit(end bool) {
	text := strings.TrimRight(string(w.buf), "\r")
	w.buf = w.buf[:0]
	lvl := w.contLvl
	if !w.cont {
		lvl = guessLevel(text)
	}
	w.cont, w.contLvl = !end, lvl
	if text == "" {
		return
	}
	w.l.logEngine(lvl, text)
}

// guessLevel reads a level from the words GStreamer, GLib and most C
// programs put in their diagnostics.
func guessLevel(s string) zerolog.Level {
	switch {
	case strings.Contains(s, "ERROR"), strings.Contains(s, "CRITICAL"):
		return zerolog.ErrorLevel
	case strings.Contains(s, "WARN"):
		return zerolog.WarnLevel
	}
	return zerolog.InfoLevel
}

// logEngine writes one engine line to the file and to memory and Live.
func (l *Logs) logEngine(lvl zerolog.Level, text string) {
	now := time.Now()
	l.engineLog.WithLevel(lvl).Str(zerolog.TimestampFieldName, now.Format(timeFormat)).Msg(text)
	l.record(entry{lvl: lvl, line: Line{Time: now, Level: lvl.String(), Source: "engine", Message: text}})
}
