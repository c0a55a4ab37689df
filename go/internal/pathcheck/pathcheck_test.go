package pathcheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func TestLocalVerdicts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.mp4")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "cam.mp4")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.mp4")
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	c := New(1, 5*time.Second, nil)
	out := make(chan Result, 1)
	for _, tc := range []struct {
		path string
		want error
	}{
		{file, nil},
		{filepath.Join(dir, "missing.mp4"), nil}, // the engine says "Resource not found"
		{fifo, ErrNotRegular},                    // stat does not block on a FIFO; open would
		{link, ErrNotRegular},
		{dir, ErrNotRegular},
		{"/dev/null", ErrNotRegular},
	} {
		t0 := time.Now()
		c.Check(context.Background(), 0, 7, tc.path, out)
		r := <-out
		if !errors.Is(r.Err, tc.want) || r.Slot != 0 || r.Token != 7 || r.Path != tc.path {
			t.Errorf("%s: %+v, want %v", tc.path, r, tc.want)
		}
		if tc.want != nil && r.Err.Error() != "not a regular file: "+tc.path {
			t.Errorf("%s: %q", tc.path, r.Err)
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("%s took %v", tc.path, d)
		}
	}
}

// blocker is a check that hangs on paths under /hung until released, as stat() on a
// mount that stopped answering does.
type blocker struct {
	mu       sync.Mutex
	released chan struct{}
	inside   int // calls stuck in the "kernel" now
	most     int
	calls    int // of paths that hang
}

func newBlocker() *blocker { return &blocker{released: make(chan struct{})} }

func (b *blocker) check(path string) error {
	if !strings.HasPrefix(path, "/hung") {
		return nil
	}
	b.mu.Lock()
	b.calls++
	b.inside++
	b.most = max(b.most, b.inside)
	b.mu.Unlock()
	<-b.released
	b.mu.Lock()
	b.inside--
	b.mu.Unlock()
	return nil
}

func TestAPathThatHangsTimesOutAndHoldsAtMostPerSlotGoroutines(t *testing.T) {
	b := newBlocker()
	const timeout = 50 * time.Millisecond
	c := New(2, timeout, b.check)
	out := make(chan Result, 1)
	before := runtime.NumGoroutine()
	for i := range 10 {
		t0 := time.Now()
		c.Check(context.Background(), 0, uint64(i), "/hung/a.mp4", out)
		r := <-out
		var te *TimeoutError
		if !errors.As(r.Err, &te) || r.Err.Error() != "path did not answer within 50ms: /hung/a.mp4" {
			t.Fatalf("check %d: %v", i, r.Err)
		}
		if d := time.Since(t0); d < timeout || d > timeout+time.Second {
			t.Fatalf("check %d answered after %v", i, d)
		}
	}
	// Slot 1 is not held up by slot 0's stuck checks.
	t0 := time.Now()
	c.Check(context.Background(), 1, 1, "/fine/b.mp4", out)
	if r := <-out; r.Err != nil || time.Since(t0) > timeout {
		t.Fatalf("other slot: %v after %v", r.Err, time.Since(t0))
	}
	b.mu.Lock()
	most, calls := b.most, b.calls
	b.mu.Unlock()
	if most != PerSlot || calls != PerSlot {
		t.Fatalf("%d checks in the kernel at once, %d calls; want %d", most, calls, PerSlot)
	}
	if n := runtime.NumGoroutine(); n > before+PerSlot+1 {
		t.Fatalf("%d goroutines, %d before", n, before)
	}
	// Once the mount answers, the slot's checks go through again.
	close(b.released)
	c.Check(context.Background(), 0, 11, "/hung/c.mp4", out)
	if r := <-out; r.Err != nil || r.Token != 11 {
		t.Fatalf("after release: %+v", r)
	}
}

func TestACancelledCheckSendsNothing(t *testing.T) {
	b := newBlocker()
	c := New(1, time.Hour, b.check)
	out := make(chan Result)
	ctx, cancel := context.WithCancel(context.Background())
	c.Check(ctx, 0, 1, "/hung/a.mp4", out)
	cancel()
	c.Check(context.Background(), 0, 2, "/fine/b.mp4", out)
	if r := <-out; r.Token != 2 || r.Err != nil {
		t.Fatalf("%+v", r)
	}
	close(b.released)
	select {
	case r := <-out:
		t.Fatalf("a cancelled check answered: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
}
