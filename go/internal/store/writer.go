package store

import (
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// stateStore is where state.json goes (instance.Dir implements it).
type stateStore interface {
	WriteState(data []byte) error
}

// stateWriter rewrites state.json off the caller's goroutine (the supervisor's loop):
// with 10,000s of queued files, encoding and fsyncing the snapshot takes long enough to
// delay replies. The store hands over snapshots; only the newest waiting one is
// written.
type stateWriter struct {
	store stateStore
	log   zerolog.Logger
	next  chan snapshot
	done  chan struct{}
	took  atomic.Int64 // nanoseconds the last write took
}

// maxStateDelay bounds how stale state.json can get behind the live state.
const maxStateDelay = 2 * time.Second

// delay is how long the store waits after a change before taking the next snapshot:
// base, or ten times the last write (at most maxStateDelay), so that encoding and
// writing a large state (100 ms for 40,000 files here) takes about a tenth of a core
// at most.
func (w *stateWriter) delay(base time.Duration) time.Duration {
	return max(base, min(maxStateDelay, 10*time.Duration(w.took.Load())))
}

func newStateWriter(store stateStore, log zerolog.Logger) *stateWriter {
	w := &stateWriter{store: store, log: log, next: make(chan snapshot, 1), done: make(chan struct{})}
	go w.run()
	return w
}

// snapshot is one state to write; written (when set) runs after a successful write.
type snapshot struct {
	v       any
	written func()
}

// put queues snapshot v, replacing one not yet written. One goroutine calls put.
func (w *stateWriter) put(v snapshot) {
	for {
		select {
		case w.next <- v:
			return
		default:
			select {
			case <-w.next:
			default:
			}
		}
	}
}

// close writes what is queued and stops the writer.
func (w *stateWriter) close() {
	close(w.next)
	<-w.done
}

func (w *stateWriter) run() {
	defer close(w.done)
	for v := range w.next {
		w.write(v)
	}
}

// write writes v at once. The store calls it only before the first put: the first
// snapshot must be on disk before the first journal line (journal.go).
func (w *stateWriter) write(v snapshot) {
	t0 := time.Now()
	b, err := json.Marshal(v.v)
	if err == nil {
		err = w.store.WriteState(b)
	}
	w.took.Store(int64(time.Since(t0)))
	if err != nil {
		w.log.Warn().Err(err).Msg("state.json not written")
	} else if v.written != nil {
		v.written()
	}
}
