// Package logs writes an instance's log: zerolog JSON lines from the
// supervisor and the engine's stdout/stderr, into one file per process named
// as the specification requires and rotated into numbered backups, with the
// most recent lines kept in memory and the important ones forwarded live
// through a rate-limited channel.
package logs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/queue"
)

// Defaults for the zero fields of Options.
const (
	DefaultMaxSize    = 2 << 20
	DefaultMaxBackups = 10
	DefaultLiveBurst  = 50
	DefaultLiveRate   = 20
	DefaultRecent     = 1000
)

// timeFormat stamps every record (milliseconds, with the zone offset).
const timeFormat = "2006-01-02T15:04:05.000Z07:00"

// Options configures Open.
type Options struct {
	Root  string    // the log root; the instance's folder is made inside it
	AppID string    // instance id (APP_ID)
	PID   int       // process id in the names; 0 means os.Getpid()
	Start time.Time // process start in the names; zero means now

	MaxSize    int64 // rotate when a write would pass this many bytes (2 MiB)
	MaxBackups int   // numbered backups kept, .log.1 … .log.N (10)

	// LiveLevel is the lowest level sent to Live. Its zero value is
	// zerolog.DebugLevel, so set it (the supervisor's default is warn).
	LiveLevel zerolog.Level
	LiveBurst int     // token-bucket size for Live (50)
	LiveRate  float64 // token refill per second for Live (20)

	Recent int // lines kept in memory for Recent and LastEngineLines (1000)
}

// Line is one log record as kept in memory and sent on Live.
type Line struct {
	Time    time.Time
	Level   string // zerolog's name: debug, info, warn, error, …
	Source  string // "supervisor" or "engine"
	Message string // the message; a supervisor record's fields follow as key=value
	Dropped int    // on Live: lines dropped by the rate limit since the previous delivered one
}

// Logs is an open instance log. Its methods are safe for concurrent use.
type Logs struct {
	appID     string
	dir, path string
	rot       *rotator
	sink      *sink
	engineLog zerolog.Logger
	now       func() time.Time // clock of the live rate limit; replaced by tests

	mu        sync.Mutex
	closed    bool
	ring      *queue.Ring[entry]  // the last lines, for Recent
	engine    *queue.Ring[string] // the engine's last lines, for a crash report
	liveLevel zerolog.Level
	burst     float64
	rate      float64
	tokens    float64
	refilled  time.Time
	dropped   int
	live      chan Line
	writers   []*engineWriter
}

// entry is a kept line. A supervisor record is kept as its JSON and parsed
// only when it is asked for (Recent) or goes live, so that logging itself
// stays cheap during a storm.
type entry struct {
	lvl  zerolog.Level
	raw  []byte // a supervisor record, or nil
	line Line   // an engine line (raw == nil)
}

func (e *entry) get() Line {
	if e.raw == nil {
		return e.line
	}
	line := parseRecord(e.raw)
	line.Level = e.lvl.String()
	return line
}

// def sets *p to v when it is zero or negative (unset).
func def[T int | int64 | float64](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// Open creates <Root>/<name>/<name>.log, where name is
// instid_<AppID>-pid_<PID>-date_<%y%m%d_%H%M%S of Start>, and returns the
// log writing to it.
func Open(o Options) (*Logs, error) {
	if o.Root == "" {
		return nil, errors.New("logs: no log root")
	}
	if o.AppID == "" || o.AppID == "." || o.AppID == ".." || strings.ContainsAny(o.AppID, "/\x00") {
		return nil, fmt.Errorf("logs: app id %q cannot be part of a file name", o.AppID)
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
	if o.Start.IsZero() {
		o.Start = time.Now()
	}
	def(&o.MaxSize, DefaultMaxSize)
	def(&o.MaxBackups, DefaultMaxBackups)
	def(&o.LiveBurst, DefaultLiveBurst)
	def(&o.LiveRate, DefaultLiveRate)
	def(&o.Recent, DefaultRecent)
	name := fmt.Sprintf("instid_%s-pid_%d-date_%s", o.AppID, o.PID, o.Start.Format("060102_150405"))
	dir := filepath.Join(o.Root, name)
	path := filepath.Join(dir, name+".log")
	rot, err := newRotator(path, o.AppID, o.MaxSize, o.MaxBackups)
	if err != nil {
		return nil, err
	}
	l := &Logs{
		appID:     o.AppID,
		dir:       dir,
		path:      path,
		rot:       rot,
		now:       time.Now,
		ring:      queue.NewRing[entry](o.Recent),
		engine:    queue.NewRing[string](o.Recent),
		liveLevel: o.LiveLevel,
		burst:     float64(o.LiveBurst),
		rate:      o.LiveRate,
		tokens:    float64(o.LiveBurst),
		live:      make(chan Line, o.LiveBurst),
	}
	l.refilled = l.now()
	l.sink = &sink{l: l}
	// Engine records are built here, not parsed back: they go straight to the file.
	l.engineLog = zerolog.New(rot).With().Str(AppIDField, o.AppID).Str("source", "engine").Logger()
	return l, nil
}

// Path returns the live log file's path.
func (l *Logs) Path() string { return l.path }

// Dir returns the folder holding the live file and its backups.
func (l *Logs) Dir() string { return l.dir }

// AppIDField names the instance in every record of the file (supervisor and engine
// lines alike), so that a log shipper needs no file path to tell instances apart.
const AppIDField = "app_id"

// Logger returns a logger writing JSON lines to the file with "app_id",
// "source":"supervisor" and a millisecond "time" (do not add another app_id or
// timestamp). Every record also enters Recent and, at LiveLevel or above, Live.
func (l *Logs) Logger() zerolog.Logger {
	return zerolog.New(l.sink).Hook(stamp).With().Str(AppIDField, l.appID).Str("source", "supervisor").Logger()
}

var stamp = zerolog.HookFunc(func(e *zerolog.Event, _ zerolog.Level, _ string) {
	e.Str(zerolog.TimestampFieldName, time.Now().Format(timeFormat))
})

// Live returns the channel of lines at or above LiveLevel, limited by a token
// bucket (LiveBurst, LiveRate per second). Logging never waits for it: a line
// that finds no token or a full channel is dropped and counted in the next
// delivered line's Dropped. It is closed by Close.
func (l *Logs) Live() <-chan Line { return l.live }

// Recent returns up to n of the most recent in-memory lines at level min or
// above, oldest first.
func (l *Logs) Recent(n int, min zerolog.Level) []Line {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Line
	for i := l.ring.Len() - 1; i >= 0 && len(out) < n; i-- {
		if e := l.ring.At(i); e.lvl >= min {
			out = append(out, e.get())
		}
	}
	slices.Reverse(out)
	return out
}

// LastEngineLines returns up to n of the engine's most recent output lines,
// oldest first.
func (l *Logs) LastEngineLines(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	n = min(n, l.engine.Len())
	out := make([]string, 0, n)
	for i := l.engine.Len() - n; i < l.engine.Len(); i++ {
		out = append(out, l.engine.At(i))
	}
	return out
}

// Close writes out the engine writers' unterminated lines, closes the file
// and the Live channel. Later writes are discarded.
func (l *Logs) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	writers := l.writers
	l.mu.Unlock()
	for _, w := range writers {
		w.flush()
	}
	l.mu.Lock()
	l.closed = true
	close(l.live)
	l.mu.Unlock()
	return l.rot.close()
}

// record keeps a line in memory and offers it to Live.
func (l *Logs) record(e entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.ring.Push(e)
	if e.raw == nil {
		l.engine.Push(e.line.Message)
	}
	if e.lvl < l.liveLevel {
		return
	}
	now := l.now()
	if dt := now.Sub(l.refilled).Seconds(); dt > 0 {
		l.tokens = min(l.burst, l.tokens+dt*l.rate)
	}
	l.refilled = now
	if l.tokens < 1 || len(l.live) == cap(l.live) {
		l.dropped++
		return
	}
	line := e.get()
	line.Dropped = l.dropped
	select {
	case l.live <- line:
		l.tokens--
		l.dropped = 0
	default:
		l.dropped++
	}
}
