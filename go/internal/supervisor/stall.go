package supervisor

import (
	"fmt"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// Defaults of the frame-progress watchdog.
const (
	// DefaultStallTimeout: long enough for a slow first frame on a loaded GPU (a new
	// decoder, a busy batch; the engines' own start watchdogs give a file 5 s (gst) and
	// 10 s (DeepStream) to start), short enough that a stuck camera is noticed within a
	// minute even when it takes a second stall to restart the engine.
	DefaultStallTimeout = 20 * time.Second
	// DefaultStopGrace is how long a stopped slot may still report its stalled file.
	DefaultStopGrace = 5 * time.Second
)

// Stall actions, as analysis_status shows them.
const (
	stallStopped    = "stopped"
	stallRestarting = "restarting"
)

// stallWatch is the frame-progress watchdog, engine-agnostic: from the replies of the
// liveness check's progress calls (one a second), it notes per slot when the frame count
// of the file the engine plays last moved, and finds the slots whose count has not moved
// for timeout. It decides; the loop acts (stall.go's loop methods). Only the loop
// touches it.
type stallWatch struct {
	timeout, stopGrace time.Duration // timeout 0: off
	slots              []slotWatch
	lastStall          time.Time // the last stall found, and on which slot
	lastStallSlot      int
}

type slotWatch struct {
	active bool  // a file of the slot is in the engine and watched
	file   int64 // that file
	frames uint64
	moved  time.Time // when frames last moved (the play counts as a move)
	// afterStall: the slot's previous file was stopped for a stall; nextAfterStall
	// passes that on to the next file played.
	afterStall, nextAfterStall bool
	// stopped is the stalled file the slot was told to stop, until a reply shows it gone.
	stopped   int64
	stopping  bool
	stoppedAt time.Time
	mark      *protocol.StallStatus // shown in analysis_status while set
	count     uint64                // stalls found (metrics)
}

// stall is one slot found stalled.
type stall struct {
	slot   int
	file   int64
	frames uint64
	quiet  time.Duration // since the frame count last moved
}

// verdict is what one progress reply showed: the stalls, and why the pipeline as a
// whole must be restarted ("" when stopping each stalled slot is enough).
type verdict struct {
	stalls   []stall
	escalate string
}

func newStallWatch(slots int, timeout, stopGrace time.Duration) stallWatch {
	return stallWatch{timeout: timeout, stopGrace: stopGrace, slots: make([]slotWatch, slots)}
}

func (w *stallWatch) slot(i int) *slotWatch {
	if i < 0 || i >= len(w.slots) {
		return nil
	}
	return &w.slots[i]
}

// played starts watching file on slot: the engine accepted its play, so the slot was
// idle and any stop of a stalled file there took (file ids are unique per camera only:
// the stopped one is forgotten here, not compared later).
func (w *stallWatch) played(slot int, file int64, now time.Time) {
	s := w.slot(slot)
	if s == nil {
		return
	}
	s.active, s.file, s.frames, s.moved = true, file, 0, now
	s.afterStall, s.nextAfterStall = s.nextAfterStall, false
	s.stopping = false
}

// stopPending is true while slot's stalled file was told to stop and no reply or
// accepted play has shown that the stop took.
func (w *stallWatch) stopPending(slot int) bool {
	s := w.slot(slot)
	return s != nil && s.stopping
}

// activity restarts file's clock: the engine is handling it without frames (a live
// source's outage: stream_lost says when the next attempt comes, after extra).
func (w *stallWatch) activity(slot int, file int64, now time.Time, extra time.Duration) {
	if s := w.slot(slot); s != nil && s.active && s.file == file {
		s.moved = now.Add(max(extra, 0))
	}
}

// reset forgets every file and every stall: the engine is new (or gone).
func (w *stallWatch) reset() {
	for i := range w.slots {
		count := w.slots[i].count
		w.slots[i] = slotWatch{count: count}
	}
	w.lastStall = time.Time{}
}

// restarting marks the slots in v as being handled by an engine restart.
func (w *stallWatch) restarting(v verdict) {
	for _, st := range v.stalls {
		w.mark(st, stallRestarting)
	}
}

// stopped records that st's slot was told to stop its stalled file: its next file
// is watched for a repeat, and a reply still showing the file after stopGrace means
// the stop did not take.
func (w *stallWatch) stopped(st stall, now time.Time) {
	s := w.slot(st.slot)
	if s == nil {
		return
	}
	w.mark(st, stallStopped)
	s.active = false
	s.nextAfterStall = true
	s.stopped, s.stopping, s.stoppedAt = st.file, true, now
}

func (w *stallWatch) mark(st stall, action string) {
	if s := w.slot(st.slot); s != nil {
		s.mark = &protocol.StallStatus{FileID: st.file, Frames: st.frames,
			StalledMS: st.quiet.Milliseconds(), Action: action}
	}
}

// observe takes one progress reply received at now; current says which file the
// state has on the engine for a slot. It returns the slots found stalled and whether
// the pipeline itself is wedged: the same slot stalled again on the file after a
// stalled one, two slots stalled within one timeout of each other, or a stopped slot
// still on its stalled file after stopGrace.
func (w *stallWatch) observe(now time.Time, reply []engine.SlotProgress, current func(int) (int64, bool)) verdict {
	var v verdict
	if w.timeout <= 0 {
		return v
	}
	for _, p := range reply {
		s := w.slot(p.Slot)
		if s == nil {
			continue
		}
		onFile := p.State == engine.SlotPlaying && p.FileID != nil
		if s.stopping {
			if !onFile || *p.FileID != s.stopped {
				s.stopping = false
			} else if now.Sub(s.stoppedAt) >= w.stopGrace && v.escalate == "" {
				v.escalate = fmt.Sprintf("stream %d still played file %d %v after it was stopped for a stall",
					p.Slot, s.stopped, w.stopGrace)
			}
		}
		if cur, ok := current(p.Slot); !s.active || !ok || cur != s.file {
			s.active = false // ended, its events are on their way
			if !ok && !s.stopping {
				s.mark = nil // idle: nothing left to handle
			}
			continue
		}
		if !onFile || *p.FileID != s.file {
			continue // not (or no longer) the engine's file: its end event is on its way
		}
		if p.Frames != s.frames {
			s.frames, s.moved = p.Frames, now
			if s.mark != nil && s.mark.Action == stallStopped {
				// Handled: a file played after the stop moves frames (a stopped slot is
				// watched again only once a play is accepted).
				s.mark = nil
			}
			continue
		}
		quiet := now.Sub(s.moved)
		if quiet < w.timeout {
			continue
		}
		st := stall{slot: p.Slot, file: s.file, frames: s.frames, quiet: quiet}
		s.count++
		s.active = false // found once
		switch {
		case s.afterStall:
			v.escalate = fmt.Sprintf("stream %d stalled again on the file after a stalled one (file %d: no new frame for %v)",
				p.Slot, s.file, round(quiet))
		case len(v.stalls) > 0:
			v.escalate = fmt.Sprintf("streams %d and %d stalled at once (no new frame for %v)",
				v.stalls[0].slot, p.Slot, round(quiet))
		case !w.lastStall.IsZero() && w.lastStallSlot != p.Slot && now.Sub(w.lastStall) < w.timeout:
			v.escalate = fmt.Sprintf("streams %d and %d stalled within %v of each other",
				w.lastStallSlot, p.Slot, round(now.Sub(w.lastStall)))
		}
		v.stalls = append(v.stalls, st)
		w.lastStall, w.lastStallSlot = now, p.Slot
	}
	return v
}

// marks returns the stall of each slot being handled, nil for the others.
func (w *stallWatch) marks() []*protocol.StallStatus {
	out := make([]*protocol.StallStatus, len(w.slots))
	for i := range w.slots {
		out[i] = w.slots[i].mark
	}
	return out
}

// counts returns the stalls found per slot.
func (w *stallWatch) counts() []uint64 {
	out := make([]uint64, len(w.slots))
	for i := range w.slots {
		out[i] = w.slots[i].count
	}
	return out
}

func round(d time.Duration) time.Duration { return d.Round(100 * time.Millisecond) }
