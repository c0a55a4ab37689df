package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// stallError is why an engine whose main loop still answers is restarted: its pipeline
// stopped moving frames (stall.go).
type stallError struct{ why string }

func (e *stallError) Error() string { return "pipeline stalled: " + e.why }

// watchProgress runs the frame-progress watchdog on one liveness reply: a slot whose
// file stopped moving frames is stopped and the file fails (the camera goes on); a
// pipeline that is stuck as a whole is restarted like a hung engine.
func (l *loop) watchProgress(p progressReply) {
	if !l.eng.up() {
		return
	}
	l.prom.progress(p.slots)
	v := l.stalls.observe(p.at, p.slots, l.state.CurrentFile)
	for _, st := range v.stalls {
		l.log.Warn().Int("slot", st.slot).Int64("file_id", st.file).Uint64("frames", st.frames).
			Dur("no_frame_for", st.quiet).Msg("stream stalled: no new frame")
	}
	if v.escalate != "" {
		l.stalls.restarting(v)
		l.eng.lost = &stallError{why: v.escalate}
		return
	}
	for _, st := range v.stalls {
		if !l.eng.up() {
			return
		}
		l.stopStalled(st, p.at)
	}
}

// stopStalled stops a stalled slot and fails its file; the camera goes on. A stop
// without an answer restarts the engine.
func (l *loop) stopStalled(st stall, now time.Time) {
	ctx, cancel := context.WithTimeout(l.eng.ctx, l.o.CallTimeout)
	_, err := l.eng.cur.Stop(ctx, st.slot)
	cancel()
	var refused *engine.RequestError
	if err != nil && !errors.As(err, &refused) {
		l.stalls.restarting(verdict{stalls: []stall{st}})
		l.eng.lost = &stallError{why: fmt.Sprintf("stream %d stalled and its stop got no answer: %v", st.slot, err)}
		return
	}
	l.stalls.stopped(st, now)
	reason := fmt.Sprintf("stalled: no new frame for %v (after %d frames); the stream was stopped and goes on",
		round(st.quiet), st.frames)
	l.apply(l.prom.failures(promexport.ErrStalled, l.store.Apply(store.Failed(st.slot, st.file, reason))))
}

// markStalls shows the slots whose stall is being handled in an analysis_status reply:
// status "error" (one of the specification's values) and the stalled extension.
func (l *loop) markStalls(msg any) any {
	marks := l.stalls.marks()
	mark := func(s *protocol.StreamStatus) {
		if s.StreamID >= 0 && s.StreamID < len(marks) && marks[s.StreamID] != nil {
			m := *marks[s.StreamID]
			s.Stalled, s.Status = &m, protocol.StatusError
		}
	}
	switch m := msg.(type) {
	case *protocol.AnalysisStatusAll:
		for i := range m.Streams {
			mark(&m.Streams[i])
		}
	case *protocol.AnalysisStatusStream:
		mark(&m.Stream)
	}
	return msg
}
