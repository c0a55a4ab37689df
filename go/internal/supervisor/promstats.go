package supervisor

import (
	"context"
	"os"
	"sync/atomic"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// StatsRequest is how the Prometheus exporter asks the loop for its figures
// (Deps.Stats): the loop sends one snapshot on the channel, which must have room for it.
type StatsRequest = chan<- promexport.Snapshot

// promStats counts what the exporter reports and no reply carries: messages by type,
// connections, and per slot the files done and failed, their frames and switch gaps.
// Only the loop touches it.
type promStats struct {
	sent, received map[string]uint64
	// connections counts handshakes; appReady runs on the link's goroutine.
	connections atomic.Uint64
	slots       []slotStats
	fpsAt       time.Time
}

type slotStats struct {
	done, failed, frames uint64
	gap                  promexport.Histogram
	// lastDone is when the slot's previous file ended, for the gap to the next file of
	// the same camera (a new camera or a failure is no switch).
	lastDone   time.Time
	lastCamera int64
	// fps from the engine's frame count of the current file between two scrapes.
	fpsFile   int64
	fpsFrames uint64
	fps       float64
}

func (p *promStats) slot(i int) *slotStats {
	for len(p.slots) <= i {
		p.slots = append(p.slots, slotStats{})
	}
	return &p.slots[i]
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

// promSnapshot answers a StatsRequest. It costs O(cameras) and, while files play, one
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

	var prog []engineSlot
	if l.eng.up() && l.state.Busy() {
		ctx, cancel := context.WithTimeout(context.Background(), progressTimeout)
		if slots, err := l.eng.cur.Progress(ctx); err == nil {
			for _, s := range slots {
				prog = append(prog, engineSlot{slot: s.Slot, file: s.FileID, frames: s.Frames})
			}
		}
		cancel()
	}
	dt := now.Sub(p.fpsAt).Seconds()
	for i := range p.slots {
		p.slots[i].fps = 0
	}
	for _, s := range prog {
		st := p.slot(s.slot)
		if s.file == nil {
			st.fpsFile, st.fpsFrames = -1, 0
			continue
		}
		if *s.file == st.fpsFile && s.frames >= st.fpsFrames && dt > 0 && !p.fpsAt.IsZero() {
			st.fps = float64(s.frames-st.fpsFrames) / dt
		}
		st.fpsFile, st.fpsFrames = *s.file, s.frames
	}
	p.fpsAt = now

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
			Stalls:        stalls[ss.StreamID],
			Frames:        st.frames,
			FPS:           st.fps,
			SwitchGap:     st.gap,
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
	for i, pid := range pids {
		if u, ok := metrics.ReadUsage(pid); ok {
			snap.Processes = append(snap.Processes, promexport.Process{Name: names[i], CPUSeconds: u.CPUSeconds, RSSBytes: u.RSSBytes})
		}
	}
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

type engineSlot struct {
	slot   int
	file   *int64
	frames uint64
}
