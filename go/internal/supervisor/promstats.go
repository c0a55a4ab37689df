package supervisor

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// promStats counts what the exporter reports and no reply carries: messages by type,
// connections, and per slot the files done and failed (by class), their frames, switch
// gaps, times to the first frame and speeds. Only the loop touches it.
type promStats struct {
	sent, received map[string]uint64
	// connections counts handshakes; appReady runs on the link's goroutine.
	connections atomic.Uint64
	slots       []slotStats
	fpsAt       time.Time
}

type slotStats struct {
	done, failed, frames uint64
	errors               map[string]uint64 // failed files by class (promexport.ErrorClasses)
	gap, firstFrame      promexport.Histogram
	speed                promexport.Histogram
	// lastDone is when the slot's previous file ended, for the gap to the next file of
	// the same camera (a new camera or a failure is no switch).
	lastDone   time.Time
	lastCamera int64
	// The file whose play was sent last, when, whether its first frame came, and its
	// duration as a progress reply showed it (0: not seen).
	playFile   int64
	playAt     time.Time
	started    bool
	durationNS int64
	// gaveUp is the live file whose engine gave up on it (stream_lost, will_retry
	// false): its file_error is a live give-up.
	gaveUp    int64
	hasGaveUp bool
	// fps from the frames of the slot's files (those done, plus the current one's so
	// far) between two scrapes.
	fpsTotal uint64
	fps      float64
}

func (p *promStats) slot(i int) *slotStats {
	for len(p.slots) <= i {
		p.slots = append(p.slots, slotStats{
			errors:     map[string]uint64{},
			gap:        promexport.NewHistogram(promexport.GapBuckets),
			firstFrame: promexport.NewHistogram(promexport.FirstFrameBuckets),
			speed:      promexport.NewHistogram(promexport.SpeedBuckets),
		})
	}
	return &p.slots[i]
}

// played records that the play of file on slot was sent at t.
func (p *promStats) played(slot int, file int64, t time.Time) {
	s := p.slot(slot)
	s.playFile, s.playAt, s.started, s.durationNS = file, t, false, 0
}

// firstFrame records file's first frame on slot (file_started) at now.
func (p *promStats) firstFrame(slot int, file int64, now time.Time) {
	s := p.slot(slot)
	if s.playAt.IsZero() || s.playFile != file || s.started {
		return
	}
	s.started = true
	s.firstFrame.Observe(now.Sub(s.playAt).Seconds())
}

// ended records that file ended normally on slot at now: its speed, when its
// duration is known.
func (p *promStats) ended(slot int, file int64, now time.Time) {
	s := p.slot(slot)
	if s.playAt.IsZero() || s.playFile != file {
		return
	}
	if wall := now.Sub(s.playAt); s.durationNS > 0 && wall > 0 {
		s.speed.Observe(float64(s.durationNS) / float64(wall))
	}
	s.playAt = time.Time{}
}

// progress takes the durations a progress reply shows of the files whose play was
// sent (a live source has none).
func (p *promStats) progress(slots []engine.SlotProgress) {
	for _, sp := range slots {
		if sp.FileID == nil || sp.DurationNS == nil || *sp.DurationNS <= 0 || sp.Slot < 0 || sp.Slot >= len(p.slots) {
			continue
		}
		if s := &p.slots[sp.Slot]; !s.playAt.IsZero() && s.playFile == *sp.FileID {
			s.durationNS = *sp.DurationNS
		}
	}
}

// gaveUpOn records that the engine gave up the live file on slot.
func (p *promStats) gaveUpOn(slot int, file int64) {
	s := p.slot(slot)
	s.gaveUp, s.hasGaveUp = file, true
}

// engineErrorClass is the class of a file_error the engine sent for file on slot, with
// text: a live give-up after its last stream_lost, else by the engine's text
// (docs/errors.md) — the stall watchdogs' and the DeepStream adapter's frames stuck
// after the end are stalls, an output file that could not be opened or written is
// output, everything else is the input's fault.
func (p *promStats) engineErrorClass(slot int, file int64, text string) string {
	if slot >= 0 && slot < len(p.slots) && p.slots[slot].hasGaveUp && p.slots[slot].gaveUp == file {
		return promexport.ErrLive
	}
	return errorClass(text)
}

// errorClass classifies an engine's message about a file (a file_error's text, or its
// refusal of a play).
func errorClass(text string) string {
	switch {
	case strings.HasPrefix(text, "stalled: "), strings.HasPrefix(text, "no video frame within "),
		strings.HasPrefix(text, "the source did not start in time"),
		strings.HasSuffix(text, "(output incomplete)"):
		return promexport.ErrStalled
	case strings.HasPrefix(text, "cannot open output "), strings.HasPrefix(text, "cannot write output "):
		return promexport.ErrOutput
	case strings.HasPrefix(text, "slot ") && strings.Contains(text, " busy"):
		return promexport.ErrEngine // the engine and the state disagree on the slot
	}
	return promexport.ErrInput
}

// failures counts the file_errors among res's events under class and returns res.
func (p *promStats) failures(class string, res analysis.Result) analysis.Result {
	for _, ev := range res.Events {
		if e, ok := ev.(*protocol.FileError); ok {
			p.slot(e.StreamID).errors[class]++
		}
	}
	return res
}

// count counts one app → server message of type typ.
func (p *promStats) count(typ string) {
	if p.sent == nil {
		p.sent = map[string]uint64{}
	}
	p.sent[typ]++
}

// sentMsg counts one app → server message and what it says about its slot.
func (p *promStats) sentMsg(msg any, now time.Time) {
	m, ok := msg.(protocol.Message)
	if !ok {
		return
	}
	p.count(m.MessageType())
	switch e := msg.(type) {
	case *protocol.FileDone:
		p.fileDone(e.StreamID, e.CameraID, e.Frames, now)
	case protocol.FileDone:
		p.fileDone(e.StreamID, e.CameraID, e.Frames, now)
	case *protocol.FileError:
		p.slot(e.StreamID).failed++
		p.slot(e.StreamID).lastDone = time.Time{}
	case protocol.FileError:
		p.slot(e.StreamID).failed++
		p.slot(e.StreamID).lastDone = time.Time{}
	case *protocol.ProcessingStarted:
		p.fileStarted(e.StreamID, e.CameraID, now)
	case protocol.ProcessingStarted:
		p.fileStarted(e.StreamID, e.CameraID, now)
	}
}

func (p *promStats) fileDone(stream int, camera int64, frames uint64, now time.Time) {
	s := p.slot(stream)
	s.done++
	s.frames += frames
	s.lastDone, s.lastCamera = now, camera
}

func (p *promStats) fileStarted(stream int, camera int64, now time.Time) {
	s := p.slot(stream)
	if !s.lastDone.IsZero() && s.lastCamera == camera {
		s.gap.Observe(now.Sub(s.lastDone).Seconds())
	}
	s.lastDone = time.Time{}
}

// receivedMsg counts one server → app frame by type ("invalid" for one that was
// refused before its type was known).
func (p *promStats) receivedMsg(typ string) {
	if p.received == nil {
		p.received = map[string]uint64{}
	}
	if typ == "" {
		typ = "invalid"
	}
	p.received[typ]++
}

func copyCounts(m map[string]uint64) map[string]uint64 {
	out := make(map[string]uint64, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// promSnapshot answers a StatsSource's request. It costs O(cameras) and, while files play, one
// progress call to the engine (bounded by progressTimeout).
func (l *loop) promSnapshot() promexport.Snapshot {
	p := &l.prom
	now := time.Now()
	snap := promexport.Snapshot{
		Ready:          l.eng.up() && l.link.Connected(),
		EngineRestarts: p.sent[protocol.TypeEngineRestarted],
		Link: &promexport.Link{
			Connected: l.link.Connected(),
			Outbox:    l.link.Pending(),
			Sent:      copyCounts(p.sent),
			Received:  copyCounts(p.received),
		},
	}
	if n := p.connections.Load(); n > 1 {
		snap.Link.Reconnects = n - 1
	}

	// Frames per second over the scrape interval, from the frames of the files done and
	// of the file each slot plays now. Without a progress reply (no answer in time) the
	// figures stay as they were rather than read a drop.
	var prog []engine.SlotProgress
	asked, answered := false, false
	if l.eng.up() && l.state.Busy() {
		asked = true
		ctx, cancel := context.WithTimeout(context.Background(), progressTimeout)
		if slots, err := l.eng.cur.Progress(ctx); err == nil {
			prog, answered = slots, true
		}
		cancel()
	}
	p.progress(prog)
	if !asked || answered {
		current := make([]uint64, l.state.Streams())
		for _, sp := range prog {
			if f, ok := l.state.CurrentFile(sp.Slot); ok && sp.FileID != nil && *sp.FileID == f {
				current[sp.Slot] = sp.Frames
			}
		}
		dt := now.Sub(p.fpsAt).Seconds()
		for i := range current {
			st := p.slot(i)
			total := st.frames + current[i]
			st.fps = 0
			if !p.fpsAt.IsZero() && dt > 0 && total > st.fpsTotal {
				st.fps = float64(total-st.fpsTotal) / dt
			}
			st.fpsTotal = total
		}
		p.fpsAt = now
	}

	state := l.state.Snapshot()
	stalls := l.stalls.counts()
	for _, ss := range state.Streams {
		st := p.slot(ss.StreamID)
		sl := promexport.Slot{
			StreamID:      ss.StreamID,
			State:         "idle",
			CamerasQueued: len(ss.Queued),
			FilesDone:     st.done,
			FilesFailed:   st.failed,
			FileErrors:    copyCounts(st.errors),
			Stalls:        stalls[ss.StreamID],
			Frames:        st.frames,
			FPS:           st.fps,
			SwitchGap:     st.gap.Clone(),
			FirstFrame:    st.firstFrame.Clone(),
			Speed:         st.speed.Clone(),
		}
		_, sl.Busy = l.state.CurrentFile(ss.StreamID)
		if at, ok := l.state.OldestQueued(ss.StreamID); ok {
			sl.OldestQueuedAge = max(now.Sub(at), 0)
		}
		if ss.Running != nil {
			sl.State = "running"
			if !l.eng.up() {
				sl.State = "error" // its engine is down or restarting
			}
			sl.FilesQueued += len(ss.Running.Queued)
		}
		for _, c := range ss.Queued {
			sl.FilesQueued += len(c.Queued)
		}
		snap.Slots = append(snap.Slots, sl)
	}

	pids := []int{os.Getpid()}
	names := []string{"supervisor"}
	if pid := l.eng.pid(); pid > 0 && l.eng.up() {
		pids, names = append(pids, pid), append(names, "engine")
	}
	snap.Processes = processStats(pids, names)
	if l.d.Metrics != nil {
		for _, g := range l.d.Metrics.GPUs(pids...) {
			pg := promexport.GPU{ID: g.ID}
			if g.Percent != nil {
				v := *g.Percent / 100
				pg.Utilization = &v
			}
			if g.VRAMUsedMB != nil {
				v := uint64(*g.VRAMUsedMB * (1 << 20))
				pg.MemoryUsedBytes = &v
			}
			if g.VRAMTotalMB != nil {
				v := uint64(*g.VRAMTotalMB * (1 << 20))
				pg.MemoryTotalBytes = &v
			}
			snap.GPUs = append(snap.GPUs, pg)
		}
	}
	return snap
}
