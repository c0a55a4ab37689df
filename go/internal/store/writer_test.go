package store

import (
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// slowStore takes a fixed time per write and keeps what it was given.
type slowStore struct {
	cost time.Duration
	mu   sync.Mutex
	got  []string
}

func (s *slowStore) WriteState(data []byte) error {
	time.Sleep(s.cost) // stands for encoding and fsyncing a large state
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, string(data))
	return nil
}

func TestStateWriterBacksOffAfterSlowWrites(t *testing.T) {
	store := &slowStore{cost: 30 * time.Millisecond}
	w := newStateWriter(store, zerolog.Nop())
	if d := w.delay(100 * time.Millisecond); d != 100*time.Millisecond {
		t.Fatalf("delay before any write = %v, want the base", d)
	}
	written := false
	w.put(snapshot{v: map[string]int{"n": 1}, written: func() { written = true }})
	w.close()
	if len(store.got) != 1 || store.got[0] != `{"n":1}` || !written {
		t.Fatalf("written: %q", store.got)
	}
	if d := w.delay(100 * time.Millisecond); d < 300*time.Millisecond || d > 3*time.Second {
		t.Fatalf("delay after a 30 ms write = %v, want ten times the write", d)
	}
	if d := w.delay(10 * time.Second); d != 10*time.Second {
		t.Fatalf("a larger base = %v, want the base", d)
	}
	w.took.Store(int64(time.Minute)) // a stalled disk
	if d := w.delay(100 * time.Millisecond); d != maxStateDelay {
		t.Fatalf("delay after a one-minute write = %v, want the cap %v", d, maxStateDelay)
	}
}
