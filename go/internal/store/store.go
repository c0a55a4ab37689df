// Package store keeps an instance's analysis state so that it survives the death of
// the process: every change that resume needs goes through one call, Apply, which
// makes it and appends it to a journal (journal.go); state.json is a snapshot of the
// whole state, rewritten off the caller's goroutine shortly after changes (writer.go),
// which compacts the journal. A process opened with resume takes over the state of a
// predecessor with the same APP_ID that did not stop cleanly (resume.go).
//
// A Store belongs to one goroutine (the supervisor's loop); only its state writer
// runs beside it.
package store

import (
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// stateDelay coalesces state.json rewrites: a 10,000-file push is one write. A large
// state waits longer (stateWriter.delay).
const stateDelay = 100 * time.Millisecond

// Options say whose state a Store keeps.
type Options struct {
	Dir     *instance.Dir // holds state.json and the journals
	AppID   string
	Streams int // the engine's slots
	// Resume takes over the state of a previous process that did not stop cleanly;
	// without it, its state.json is kept as state.json.prev and nothing is resumed.
	Resume bool
	Log    zerolog.Logger
}

// Info is what state.json says about the process beside its analysis state.
type Info struct {
	EnginePID int  // 0 while the engine is down
	Connected bool // a confirmed handshake with FastAPI
	// Clean marks a stop by terminate_app or a signal: nothing to resume.
	Clean bool
}

// File is the content of state.json.
type File struct {
	AppID     string `json:"app_id"`
	PID       int    `json:"pid"`
	EnginePID int    `json:"engine_pid"`
	Updated   string `json:"updated"`
	Connected bool   `json:"ws_connected"`
	Clean     bool   `json:"clean"`
	// Journal is the journal replayed on top of this snapshot (journal.go).
	Journal  uint64            `json:"journal"`
	Analysis analysis.Snapshot `json:"analysis"`
}

// Store is the analysis state of an instance and its persistence.
type Store struct {
	dir     *instance.Dir
	log     zerolog.Logger
	appID   string
	limits  protocol.Limits
	state   *analysis.State
	journal journal
	writer  *stateWriter
	resumed *protocol.Resumed

	dirty bool
	due   *time.Timer
}

// Open returns the store of o.Dir's instance with a new empty state, or, with
// o.Resume, the state a previous process left (see Resumed). Nothing in it fails:
// what cannot be read or written is logged, and the instance goes on without it.
func Open(o Options) *Store {
	s := &Store{
		dir:     o.Dir,
		log:     o.Log,
		appID:   o.AppID,
		limits:  protocol.Limits{Streams: o.Streams},
		state:   analysis.New(o.Streams),
		journal: journal{dir: o.Dir, log: o.Log},
		due:     time.NewTimer(time.Hour),
	}
	s.due.Stop()
	s.takeOver(o.Resume)
	s.writer = newStateWriter(o.Dir, o.Log)
	return s
}

// State is the analysis state. Read it freely; change it through Apply, except for
// what the journal does not keep (a file started, a live source's outage and return).
func (s *Store) State() *analysis.State { return s.state }

// Resumed says what Open took over from a previous process; nil when nothing.
func (s *Store) Resumed() *protocol.Resumed { return s.resumed }

// Apply makes change c to the state and, when c changed it, journals c before its
// result is returned (and anything it caused is sent).
func (s *Store) Apply(c Change) analysis.Result {
	res, err := apply(s.state, c)
	if err != nil {
		s.log.Error().Err(err).Msg("state change not applied")
		return res
	}
	if res.Changed {
		s.journal.add(c.rec)
	}
	return res
}

// Changed notes that the state changed (through Apply or not): state.json is due
// (Due fires) after a short delay, longer when rewriting it is slow, unless Save comes
// first.
func (s *Store) Changed() {
	if !s.dirty {
		s.dirty = true
		s.due.Reset(s.writer.delay(stateDelay))
	}
}

// Due fires when state.json is due to be rewritten (Changed); call Save then.
func (s *Store) Due() <-chan time.Time { return s.due.C }

// Save takes a snapshot of the state with info and hands it to the writer, which
// writes it off the caller's goroutine (replacing one it has not written yet).
func (s *Store) Save(info Info) {
	if s.dirty {
		s.due.Stop()
	}
	s.dirty = false
	s.writer.put(s.snapshot(info))
}

// Write writes a snapshot of the state with info before it returns: the first
// snapshot of a process must be on disk before its first journal line.
func (s *Store) Write(info Info) { s.writer.write(s.snapshot(info)) }

// Close writes the snapshot the writer still holds and closes the journal.
func (s *Store) Close() {
	s.writer.close()
	s.journal.close()
}

// snapshot takes the state for state.json and starts the journal that follows it;
// the older journals go once it is written.
func (s *Store) snapshot(info Info) snapshot {
	n := s.journal.rotate()
	return snapshot{v: File{
		AppID:     s.appID,
		PID:       os.Getpid(),
		EnginePID: info.EnginePID,
		Updated:   protocol.Timestamp(time.Now()),
		Connected: info.Connected,
		Clean:     info.Clean,
		Journal:   n,
		Analysis:  s.state.Snapshot(),
	}, written: func() {
		if err := s.dir.RemoveJournalsBefore(n); err != nil {
			s.log.Warn().Err(err).Msg("old state journals not removed")
		}
	}}
}
