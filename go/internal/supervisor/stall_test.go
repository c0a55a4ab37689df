package supervisor

import (
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
)

// reply is a progress reply: slot → (file, frames); a slot absent is idle.
func reply(slots int, playing map[int][2]int64) []engine.SlotProgress {
	out := make([]engine.SlotProgress, slots)
	for i := range out {
		out[i] = engine.SlotProgress{Slot: i, State: "idle"}
		if p, ok := playing[i]; ok {
			id := p[0]
			out[i] = engine.SlotProgress{Slot: i, State: "playing", FileID: &id, Frames: uint64(p[1])}
		}
	}
	return out
}

// state is the loop's view: slot → current file.
func state(cur map[int]int64) func(int) (int64, bool) {
	return func(s int) (int64, bool) { id, ok := cur[s]; return id, ok }
}

func TestStallWatchFindsAFileWhoseFramesStopped(t *testing.T) {
	const timeout = 10 * time.Second
	w := newStallWatch(2, timeout, 5*time.Second)
	t0 := time.Unix(1000, 0)
	cur := map[int]int64{0: 7}
	w.played(0, 7, t0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	// The first frame may take a while: the play counts as a move.
	if v := w.observe(at(9), reply(2, map[int][2]int64{0: {7, 0}}), state(cur)); len(v.stalls) != 0 {
		t.Fatalf("stall before the timeout: %+v", v)
	}
	if v := w.observe(at(10), reply(2, map[int][2]int64{0: {7, 5}}), state(cur)); len(v.stalls) != 0 {
		t.Fatalf("moving file stalled: %+v", v)
	}
	// Another file in the reply (the state's file ended, its event is on its way), or
	// the reply's slot idle: not judged.
	if v := w.observe(at(25), reply(2, map[int][2]int64{0: {8, 5}}), state(cur)); len(v.stalls) != 0 {
		t.Fatalf("%+v", v)
	}
	v := w.observe(at(20), reply(2, map[int][2]int64{0: {7, 5}}), state(cur))
	if len(v.stalls) != 1 || v.escalate != "" {
		t.Fatalf("%+v", v)
	}
	if st := v.stalls[0]; st.slot != 0 || st.file != 7 || st.frames != 5 || st.quiet != timeout {
		t.Fatalf("%+v", st)
	}
	// Found once.
	if v := w.observe(at(21), reply(2, map[int][2]int64{0: {7, 5}}), state(cur)); len(v.stalls) != 0 {
		t.Fatalf("found twice: %+v", v)
	}
	if c := w.counts(); c[0] != 1 || c[1] != 0 {
		t.Fatalf("counts %v", c)
	}
}

func TestStallWatchEscalates(t *testing.T) {
	const timeout = 10 * time.Second
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	t.Run("the same slot again on its next file", func(t *testing.T) {
		w := newStallWatch(1, timeout, 5*time.Second)
		w.played(0, 1, t0)
		v := w.observe(at(10), reply(1, map[int][2]int64{0: {1, 0}}), state(map[int]int64{0: 1}))
		if len(v.stalls) != 1 || v.escalate != "" {
			t.Fatalf("%+v", v)
		}
		w.stopped(v.stalls[0], at(10))
		if m := w.marks()[0]; m == nil || m.Action != stallStopped || m.FileID != 1 {
			t.Fatalf("mark %+v", m)
		}
		w.played(0, 2, at(10))
		cur := state(map[int]int64{0: 2})
		// A few frames move (a wedged pipeline takes what its queues hold), then none.
		w.observe(at(11), reply(1, map[int][2]int64{0: {2, 16}}), cur)
		if m := w.marks()[0]; m != nil {
			t.Fatalf("moving again but still marked: %+v", m)
		}
		v = w.observe(at(21), reply(1, map[int][2]int64{0: {2, 16}}), cur)
		if len(v.stalls) != 1 || !strings.Contains(v.escalate, "stream 0 stalled again on the file after a stalled one") {
			t.Fatalf("%+v", v)
		}
		w.restarting(v)
		if m := w.marks()[0]; m == nil || m.Action != stallRestarting || m.FileID != 2 || m.Frames != 16 {
			t.Fatalf("mark %+v", m)
		}
		w.reset() // the new engine
		if w.marks()[0] != nil || w.counts()[0] != 2 {
			t.Fatalf("after reset: %+v %v", w.marks()[0], w.counts())
		}
		w.played(0, 3, at(30))
		if v := w.observe(at(40), reply(1, map[int][2]int64{0: {3, 0}}), state(map[int]int64{0: 3})); len(v.stalls) != 1 || v.escalate != "" {
			t.Fatalf("after a restart a stall starts over: %+v", v)
		}
	})

	t.Run("a file that ends otherwise clears the repeat", func(t *testing.T) {
		w := newStallWatch(1, timeout, 5*time.Second)
		w.played(0, 1, t0)
		v := w.observe(at(10), reply(1, map[int][2]int64{0: {1, 0}}), state(map[int]int64{0: 1}))
		w.stopped(v.stalls[0], at(10))
		w.played(0, 2, at(10)) // file 2 plays to its end
		w.played(0, 3, at(12))
		v = w.observe(at(22), reply(1, map[int][2]int64{0: {3, 0}}), state(map[int]int64{0: 3}))
		if len(v.stalls) != 1 || v.escalate != "" {
			t.Fatalf("%+v", v)
		}
	})

	t.Run("two slots at once", func(t *testing.T) {
		w := newStallWatch(2, timeout, 5*time.Second)
		w.played(0, 1, t0)
		w.played(1, 2, t0)
		v := w.observe(at(10), reply(2, map[int][2]int64{0: {1, 0}, 1: {2, 0}}), state(map[int]int64{0: 1, 1: 2}))
		if len(v.stalls) != 2 || !strings.Contains(v.escalate, "streams 0 and 1 stalled at once") {
			t.Fatalf("%+v", v)
		}
	})

	t.Run("two slots within one timeout, and beyond it", func(t *testing.T) {
		w := newStallWatch(2, timeout, 5*time.Second)
		w.played(0, 1, t0)
		w.played(1, 2, at(5))
		cur := state(map[int]int64{0: 1, 1: 2})
		v := w.observe(at(10), reply(2, map[int][2]int64{0: {1, 0}, 1: {2, 0}}), cur)
		if len(v.stalls) != 1 || v.escalate != "" {
			t.Fatalf("%+v", v)
		}
		w.stopped(v.stalls[0], at(10))
		v = w.observe(at(15), reply(2, map[int][2]int64{1: {2, 0}}), state(map[int]int64{1: 2}))
		if len(v.stalls) != 1 || !strings.Contains(v.escalate, "streams 0 and 1 stalled within 5s") {
			t.Fatalf("%+v", v)
		}

		w = newStallWatch(2, timeout, 5*time.Second)
		w.played(0, 1, t0)
		w.played(1, 2, at(11))
		v = w.observe(at(10), reply(2, map[int][2]int64{0: {1, 0}, 1: {2, 0}}), cur)
		w.stopped(v.stalls[0], at(10))
		v = w.observe(at(21), reply(2, map[int][2]int64{1: {2, 0}}), state(map[int]int64{1: 2}))
		if len(v.stalls) != 1 || v.escalate != "" {
			t.Fatalf("11 s apart: %+v", v)
		}
	})

	t.Run("a stop that does not take", func(t *testing.T) {
		w := newStallWatch(1, timeout, 5*time.Second)
		w.played(0, 1, t0)
		v := w.observe(at(10), reply(1, map[int][2]int64{0: {1, 0}}), state(map[int]int64{0: 1}))
		w.stopped(v.stalls[0], at(10))
		idle := state(map[int]int64{})
		if v := w.observe(at(14), reply(1, map[int][2]int64{0: {1, 0}}), idle); v.escalate != "" {
			t.Fatalf("within the grace: %+v", v)
		}
		v = w.observe(at(15), reply(1, map[int][2]int64{0: {1, 0}}), idle)
		if !strings.Contains(v.escalate, "stream 0 still played file 1 5s after it was stopped") {
			t.Fatalf("%+v", v)
		}
		// A stop that took: the mark goes once the slot is idle.
		w = newStallWatch(1, timeout, 5*time.Second)
		w.played(0, 1, t0)
		v = w.observe(at(10), reply(1, map[int][2]int64{0: {1, 0}}), state(map[int]int64{0: 1}))
		w.stopped(v.stalls[0], at(10))
		w.observe(at(11), reply(1, nil), idle)
		w.observe(at(12), reply(1, nil), idle)
		if m := w.marks()[0]; m != nil {
			t.Fatalf("idle slot still marked %+v", m)
		}
	})
}

func TestStallWatchLiveOutagesAndOff(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	w := newStallWatch(1, 10*time.Second, 5*time.Second)
	w.played(0, 1, t0)
	cur := state(map[int]int64{0: 1})
	// An outage the engine reports, retrying in 30 s: no stall until that try is due
	// and a timeout more has passed without news.
	w.activity(0, 1, at(5), 30*time.Second)
	if v := w.observe(at(44), reply(1, map[int][2]int64{0: {1, 0}}), cur); len(v.stalls) != 0 {
		t.Fatalf("%+v", v)
	}
	if v := w.observe(at(45), reply(1, map[int][2]int64{0: {1, 0}}), cur); len(v.stalls) != 1 {
		t.Fatalf("a live source that never came back: %+v", v)
	}

	off := newStallWatch(1, -1, 5*time.Second)
	off.played(0, 1, t0)
	if v := off.observe(at(3600), reply(1, map[int][2]int64{0: {1, 0}}), cur); len(v.stalls) != 0 {
		t.Fatalf("off: %+v", v)
	}
}
