package analysis

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// Status answers a validated query_analysis_status in the shape its granularity asks
// for: *protocol.AnalysisStatusAll (no stream_id), *protocol.AnalysisStatusStream
// (stream_id) or *protocol.AnalysisStatusCamera (stream_id and camera_id); a slot out of
// range or a camera not on that stream gives *protocol.AnalysisStatusError. prog may be
// nil (progress_pct is then 0, and no live object is shown).
func (s *State) Status(q *protocol.QueryAnalysisStatus, prog Progress, now time.Time) any {
	ts := protocol.Timestamp(now)
	if q.StreamID == nil {
		all := &protocol.AnalysisStatusAll{RequestID: q.RequestID, Timestamp: ts,
			Streams: make([]protocol.StreamStatus, len(s.slots))}
		for i := range s.slots {
			all.Streams[i] = s.streamStatus(i, prog)
		}
		return all
	}
	slot := *q.StreamID
	fail := func(format string, a ...any) any {
		return &protocol.AnalysisStatusError{RequestID: protocol.Str(q.RequestID), Timestamp: ts, StreamID: q.StreamID,
			CameraID: q.CameraID, Status: protocol.StatusError, ErrorReason: fmt.Sprintf(format, a...)}
	}
	if slot < 0 || slot >= len(s.slots) {
		return fail("stream_id %d out of range (0..%d)", slot, len(s.slots)-1)
	}
	if q.CameraID == nil {
		return &protocol.AnalysisStatusStream{RequestID: q.RequestID, Timestamp: ts, Stream: s.streamStatus(slot, prog)}
	}
	c, ok := s.cams[*q.CameraID]
	if !ok {
		if f, was := s.finished[*q.CameraID]; was && f.slot == slot {
			return fail("camera %d not found on stream %d (it has %s)", *q.CameraID, slot, f.how)
		}
		return fail("camera %d not found on stream %d", *q.CameraID, slot)
	}
	if c.slot != slot {
		return fail("camera %d not found on stream %d (it is on stream %d)", *q.CameraID, slot, c.slot)
	}
	return &protocol.AnalysisStatusCamera{RequestID: q.RequestID, Timestamp: ts, StreamID: slot,
		Camera: s.cameraStatus(c, prog)}
}

func (s *State) streamStatus(slot int, prog Progress) protocol.StreamStatus {
	sl := &s.slots[slot]
	st := protocol.StreamStatus{StreamID: slot, Status: protocol.StatusIdle,
		Cameras: make([]protocol.CameraStatus, 0, len(sl.waiting)+1)}
	if sl.running != nil {
		st.Status = protocol.StatusRunning
		st.Cameras = append(st.Cameras, s.cameraStatus(sl.running, prog))
	}
	for _, c := range sl.waiting {
		st.Cameras = append(st.Cameras, s.cameraStatus(c, prog))
	}
	return st
}

func (s *State) cameraStatus(c *camera, prog Progress) protocol.CameraStatus {
	cs := protocol.CameraStatus{CameraID: c.id, Status: protocol.StatusQueued, TrackerReset: c.reset}
	if s.slots[c.slot].running == c {
		cs.Status = protocol.StatusRunning
	}
	fs := &cs.Files
	fs.Processing = []protocol.ProcessingFile{}
	if c.current != nil {
		pf := protocol.ProcessingFile{FileID: c.current.FileID, FileName: c.current.FileName}
		if prog != nil {
			if p, ok := prog(c.slot); ok {
				if c.started {
					pf.ProgressPct = percent(p.PositionNS, p.DurationNS)
				}
				pf.Live = p.Live // connecting: before the first frame too
			}
		}
		fs.Processing = append(fs.Processing, pf)
	}
	fs.CompletedCount = c.done + c.failed
	fs.FailedCount = c.failed
	pend := c.pending()
	fs.QueuedCount = len(pend)
	fs.Queued = make([]protocol.QueuedFile, len(pend))
	for i := range pend {
		fs.Queued[i] = protocol.QueuedFile{FileID: pend[i].FileID, FileName: pend[i].FileName}
	}
	return cs
}

// percent is pos/dur in percent, clamped to 0..100 and rounded to 0.1; 0 when the
// duration is unknown.
func percent(pos, dur int64) float64 {
	if dur <= 0 || pos <= 0 {
		return 0
	}
	p := float64(pos) * 100 / float64(dur)
	if p > 100 {
		p = 100
	}
	return math.Round(p*10) / 10
}

// Snapshot is the full analysis state, for state.json.
type Snapshot struct {
	Streams []SlotSnapshot `json:"streams"`
}

// SlotSnapshot is one stream slot of a Snapshot.
type SlotSnapshot struct {
	StreamID int              `json:"stream_id"`
	Running  *CameraSnapshot  `json:"running"`
	Queued   []CameraSnapshot `json:"queued"`
}

// CameraSnapshot is one camera of a Snapshot.
type CameraSnapshot struct {
	CameraID       int64          `json:"camera_id"`
	CameraType     string         `json:"camera_type"`
	CameraName     string         `json:"camera_name"`
	CameraPath     string         `json:"camera_path"`
	OutputDir      string         `json:"output_dir"`
	RequestID      string         `json:"request_id"`
	Current        *FileSnapshot  `json:"current"`
	CurrentStarted bool           `json:"current_started"`
	Queued         []FileSnapshot `json:"queued"`
	DoneCount      int            `json:"done_count"`
	FailedCount    int            `json:"failed_count"`
	EOS            bool           `json:"eos"`
	EOSRequestID   string         `json:"eos_request_id,omitempty"`
	// Played: a file of the camera went to the engine (later ones continue its
	// tracker); TrackerReset: its next file starts with a reset after an engine loss.
	Played       bool `json:"played"`
	TrackerReset bool `json:"tracker_reset,omitempty"`
}

// FileSnapshot is one file of a Snapshot.
type FileSnapshot struct {
	FileID     int64  `json:"file_id"`
	FileName   string `json:"file_name"`
	FilePath   string `json:"file_path"`
	OutputPath string `json:"output_path"`
	RequestID  string `json:"request_id"`
}

// Snapshot returns a copy of the whole state, ready for json.Marshal.
func (s *State) Snapshot() Snapshot {
	snap := Snapshot{Streams: make([]SlotSnapshot, len(s.slots))}
	for i := range s.slots {
		sl := &s.slots[i]
		ss := SlotSnapshot{StreamID: i, Queued: make([]CameraSnapshot, 0, len(sl.waiting))}
		if sl.running != nil {
			c := snapCamera(sl.running)
			ss.Running = &c
		}
		for _, c := range sl.waiting {
			ss.Queued = append(ss.Queued, snapCamera(c))
		}
		snap.Streams[i] = ss
	}
	return snap
}

func snapCamera(c *camera) CameraSnapshot {
	cs := CameraSnapshot{CameraID: c.id, CameraType: c.typ, CameraName: c.name, CameraPath: c.path,
		OutputDir: c.outputDir, RequestID: c.reqID, CurrentStarted: c.started, DoneCount: c.done,
		FailedCount: c.failed, EOS: c.eos, EOSRequestID: c.eosReq, Played: c.played, TrackerReset: c.reset}
	if c.current != nil {
		f := *c.current
		cs.Current = &f
	}
	// Shared, not copied: the loop never writes these elements again (camera.pop).
	pend := c.pending()
	cs.Queued = pend[:len(pend):len(pend)]
	if cs.Queued == nil {
		cs.Queued = []FileSnapshot{} // "queued": [], not null
	}
	return cs
}

// Restore rebuilds a state of streams slots from a snapshot (state.json of a previous
// process) at now. The result is what the snapshot describes, with the files it had in
// the engine still current: the caller reports them (EngineLost) before playing on.
// The snapshot keeps no arrival times: its queued files count as arrived at now.
func Restore(streams int, snap Snapshot, now time.Time) (*State, error) {
	if len(snap.Streams) != streams {
		return nil, fmt.Errorf("the snapshot has %d streams, this instance %d", len(snap.Streams), streams)
	}
	s := New(streams)
	add := func(slot int, cs CameraSnapshot) (*camera, error) {
		if _, dup := s.cams[cs.CameraID]; dup {
			return nil, fmt.Errorf("camera %d appears twice in the snapshot", cs.CameraID)
		}
		c := &camera{id: cs.CameraID, slot: slot, typ: cs.CameraType, name: cs.CameraName, path: cs.CameraPath,
			outputDir: cs.OutputDir, reqID: cs.RequestID, queue: slices.Clone(cs.Queued), started: cs.CurrentStarted,
			played: cs.Played, reset: cs.TrackerReset, known: make(map[int64]struct{}), done: cs.DoneCount,
			failed: cs.FailedCount, eos: cs.EOS, eosReq: cs.EOSRequestID}
		if cs.Current != nil {
			f := *cs.Current
			c.current = &f
			c.known[f.FileID] = struct{}{}
		}
		for _, f := range c.queue {
			c.known[f.FileID] = struct{}{}
		}
		c.arrived(now)
		s.cams[c.id] = c
		return c, nil
	}
	for i, ss := range snap.Streams {
		if ss.Running != nil {
			c, err := add(i, *ss.Running)
			if err != nil {
				return nil, err
			}
			s.slots[i].running = c
		}
		for _, q := range ss.Queued {
			c, err := add(i, q)
			if err != nil {
				return nil, err
			}
			s.slots[i].waiting = append(s.slots[i].waiting, c)
		}
	}
	return s, nil
}

// Counts returns how many cameras (running and queued) and files (queued, not in
// the engine) the state holds.
func (s *State) Counts() (cameras, files int) {
	for _, c := range s.cams {
		files += len(c.pending())
	}
	return len(s.cams), files
}
