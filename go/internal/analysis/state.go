// Package analysis holds the analysis state of an instance: per stream slot a FIFO of
// cameras, per camera a FIFO of files. It turns validated requests and engine events
// into replies, events for FastAPI and commands for the engine. It does no I/O and is
// not safe for concurrent use: one goroutine owns a State.
//
// The caller sends Result.Reply first, then Result.Events in order, and issues
// Result.Commands to the engine in order. Output directories are not created here: the
// caller checks a start with CheckStart, creates output_dir (os.MkdirAll), answers
// StartError when that fails, and only then calls Start.
package analysis

import (
	"fmt"
	"net/url"
	"slices"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// Op is an engine command.
type Op int

// Engine commands (docs/engine-protocol.md: play, stop, reset).
const (
	OpPlay Op = iota + 1
	OpStop
	OpReset
)

// String returns the engine protocol's name of the op.
func (o Op) String() string {
	switch o {
	case OpPlay:
		return "play"
	case OpStop:
		return "stop"
	case OpReset:
		return "reset"
	}
	return fmt.Sprintf("op(%d)", int(o))
}

// Command is one request for the engine. FileID, URI, NewCamera and OutputPath are set
// for OpPlay only.
type Command struct {
	Op         Op
	Slot       int
	FileID     int64
	URI        string
	NewCamera  bool
	OutputPath string
}

// Result is what a call produced.
type Result struct {
	// Reply answers the request (a protocol message); nil when there is none (a
	// successful push_file, an engine event).
	Reply any
	// Events are protocol messages to send after Reply, in order.
	Events []any
	// Commands go to the engine, in order.
	Commands []Command
	// Changed is true when the state changed (time to rewrite state.json).
	Changed bool
	// Ignored says why an engine event did not match the state (a stale event after a
	// stop); the event changed nothing. "" when the event was applied.
	Ignored string
}

// Progress reports what the engine says of the file playing on a slot; ok is false
// when unknown. Status turns it into progress_pct and the live object.
type Progress func(slot int) (p SlotProgress, ok bool)

// SlotProgress is the engine's view of a slot's current file.
type SlotProgress struct {
	// PositionNS and DurationNS are 0 when unknown (a live source has no duration).
	PositionNS, DurationNS int64
	// Live is set for a live source only.
	Live *protocol.LiveStatus
}

// InFlight is a running camera and its current file, for the crash report.
type InFlight = protocol.CameraInFlight

// finishedMemory bounds how many finished camera ids are remembered for precise
// push_file errors.
const finishedMemory = 1024

// file is a queued or playing file; it is its own snapshot form, so that a snapshot
// can share a camera's queue instead of copying it (see camera.pop). FilePath is a
// path or a URI (videostream); it is made a URI when played.
type file = FileSnapshot

type camera struct {
	id        int64
	slot      int
	typ       string
	name      string
	path      string
	outputDir string
	reqID     string // start_analysis

	queue   []file // pending files from head on
	head    int
	current *file
	started bool // the engine reported the current file's first frame
	played  bool // a play was issued: later files continue the camera
	// reset marks a camera whose tracker state died with the engine: its next file
	// starts with a tracker reset and says so.
	reset bool
	// down marks a live file between the stream_lost of an outage and its
	// stream_resumed: the engine's further stream_lost (one per failed retry) are not
	// sent again.
	down   bool
	known  map[int64]struct{}
	done   int
	failed int
	eos    bool
	eosReq string // request that delivered eos; "" = the start_analysis

	// popped counts the files taken from the queue; arrivals says when the pending
	// ones came, oldest first (one entry per start_analysis or push_file that added
	// files, not one per file).
	popped   uint64
	arrivals []arrival
}

// arrival: the camera's files up to number upto (counted from its first file, 1-based)
// arrived at at.
type arrival struct {
	upto uint64
	at   time.Time
}

type slot struct {
	running *camera
	waiting []*camera
}

type finished struct {
	slot int
	how  string
}

// State is the analysis state of all stream slots.
type State struct {
	slots         []slot
	cams          map[int64]*camera // running and queued cameras
	finished      map[int64]finished
	finishedOrder []int64
	// held is set while the engine is down (EngineLost until EngineBack): the slots
	// take requests but play nothing.
	held bool
}

// New returns an idle state with the given number of stream slots.
func New(streams int) *State {
	if streams < 0 {
		streams = 0
	}
	return &State{
		slots:    make([]slot, streams),
		cams:     make(map[int64]*camera),
		finished: make(map[int64]finished),
	}
}

// Streams returns the number of slots.
func (s *State) Streams() int { return len(s.slots) }

// Busy reports whether any slot runs a camera.
func (s *State) Busy() bool {
	for i := range s.slots {
		if s.slots[i].running != nil {
			return true
		}
	}
	return false
}

// CurrentFile returns the file handed to the engine on slot, if any.
func (s *State) CurrentFile(slot int) (int64, bool) {
	if slot < 0 || slot >= len(s.slots) || s.slots[slot].running == nil || s.slots[slot].running.current == nil {
		return 0, false
	}
	return s.slots[slot].running.current.FileID, true
}

// StartError is the error reply to a start_analysis, for failures found by the caller
// (such as an output_dir that cannot be created).
func StartError(r *protocol.StartAnalysis, reason string) *protocol.AnalysisStarted {
	return &protocol.AnalysisStarted{RequestID: protocol.Str(r.RequestID), StreamID: protocol.Int(r.StreamID),
		CameraID: protocol.Int64(r.CameraID), Status: protocol.StatusError, ErrorReason: reason}
}

// CheckStart returns the error reply Start would give, or nil when Start will accept
// r. It changes nothing.
func (s *State) CheckStart(r *protocol.StartAnalysis) *protocol.AnalysisStarted {
	if r.StreamID < 0 || r.StreamID >= len(s.slots) {
		return StartError(r, fmt.Sprintf("stream_id %d out of range (0..%d)", r.StreamID, len(s.slots)-1))
	}
	if c, ok := s.cams[r.CameraID]; ok {
		if s.slots[c.slot].running == c {
			return StartError(r, fmt.Sprintf("camera %d is already running on stream %d", r.CameraID, c.slot))
		}
		return StartError(r, fmt.Sprintf("camera %d is already queued on stream %d", r.CameraID, c.slot))
	}
	switch r.CameraType {
	case protocol.CameraFile, protocol.CameraVideostream:
		if r.InitFile == nil {
			return StartError(r, fmt.Sprintf("init_file is required for camera_type %q", r.CameraType))
		}
	case protocol.CameraFileset:
	default:
		return StartError(r, fmt.Sprintf("unknown camera_type %q", r.CameraType))
	}
	if r.InitFile != nil && r.InitFile.FileType == protocol.FileTypeEOS {
		return StartError(r, "init_file cannot be the eos item")
	}
	return nil
}

// Start handles a validated start_analysis that arrived at now: on an idle slot the
// camera runs now (its first file is played); on a busy slot it joins the slot's
// camera queue.
func (s *State) Start(r *protocol.StartAnalysis, now time.Time) Result {
	if rep := s.CheckStart(r); rep != nil {
		return Result{Reply: rep}
	}
	c := &camera{
		id: r.CameraID, slot: r.StreamID, typ: r.CameraType, name: r.CameraName, path: r.CameraPath,
		outputDir: r.OutputDir, reqID: r.RequestID, known: make(map[int64]struct{}),
	}
	if r.InitFile != nil {
		c.add(*r.InitFile, r.RequestID)
		c.arrived(now)
	}
	// A file camera ends after its one file; a videostream when its stream ends.
	c.eos = r.CameraType != protocol.CameraFileset
	s.cams[c.id] = c
	delete(s.finished, c.id)

	res := Result{Changed: true}
	sl := &s.slots[c.slot]
	reply := &protocol.AnalysisStarted{RequestID: protocol.Str(r.RequestID), StreamID: protocol.Int(r.StreamID),
		CameraID: protocol.Int64(r.CameraID), Status: protocol.StatusOK}
	res.Reply = reply
	if sl.running == nil {
		sl.running = c
		reply.Message = fmt.Sprintf("Stream %d for camera %d analysis started", c.slot, c.id)
		s.advance(c.slot, &res)
	} else {
		sl.waiting = append(sl.waiting, c)
		reply.Message = fmt.Sprintf("Stream %d is busy with camera %d; camera %d queued at position %d",
			c.slot, sl.running.id, c.id, len(sl.waiting))
	}
	return res
}

// Push handles a validated push_file, arrived at now, for a running or queued fileset
// camera. Success has no reply (the specification answers push_file only on error); the
// files' events follow as they are played. On error nothing changes.
func (s *State) Push(r *protocol.PushFile, now time.Time) Result {
	fail := func(format string, a ...any) Result {
		return Result{Reply: &protocol.PushAck{RequestID: protocol.Str(r.RequestID), StreamID: protocol.Int(r.StreamID),
			CameraID: protocol.Int64(r.CameraID), Status: protocol.StatusError, ErrorReason: fmt.Sprintf(format, a...)}}
	}
	if r.StreamID < 0 || r.StreamID >= len(s.slots) {
		return fail("stream_id %d out of range (0..%d)", r.StreamID, len(s.slots)-1)
	}
	c, ok := s.cams[r.CameraID]
	if !ok {
		if f, was := s.finished[r.CameraID]; was && f.slot == r.StreamID {
			return fail("camera %d on stream %d has already %s", r.CameraID, f.slot, f.how)
		}
		return fail("camera %d has no running or queued analysis on stream %d", r.CameraID, r.StreamID)
	}
	if c.slot != r.StreamID {
		return fail("camera %d is on stream %d, not on stream %d", r.CameraID, c.slot, r.StreamID)
	}
	if c.typ != protocol.CameraFileset {
		return fail("camera %d has camera_type %q, which takes no push_file", r.CameraID, c.typ)
	}
	if c.eos {
		return fail("camera %d already received its eos item", r.CameraID)
	}
	for i, f := range r.Files {
		if f.FileType == protocol.FileTypeEOS {
			continue
		}
		if _, dup := c.known[f.FileID]; dup {
			return fail("files[%d]: file_id %d was already delivered for camera %d", i, f.FileID, r.CameraID)
		}
	}
	c.queue = slices.Grow(c.queue, len(r.Files))
	for _, f := range r.Files {
		if f.FileType == protocol.FileTypeEOS {
			c.eos = true
			c.eosReq = r.RequestID
			continue
		}
		c.add(f, r.RequestID)
	}
	c.arrived(now)
	res := Result{Changed: true}
	if s.slots[c.slot].running == c {
		s.advance(c.slot, &res)
	}
	return res
}

// Interrupt handles a validated interrupt_analysis: a running camera is stopped (its
// queued files dropped, the slot reset) and the next queued camera starts; a queued
// camera is removed.
func (s *State) Interrupt(r *protocol.InterruptAnalysis) Result {
	reply := &protocol.AnalysisInterrupted{RequestID: protocol.Str(r.RequestID), StreamID: protocol.Int(r.StreamID),
		CameraID: protocol.Int64(r.CameraID), Status: protocol.StatusError}
	res := Result{Reply: reply}
	if r.StreamID < 0 || r.StreamID >= len(s.slots) {
		reply.ErrorReason = fmt.Sprintf("stream_id %d out of range (0..%d)", r.StreamID, len(s.slots)-1)
		return res
	}
	sl := &s.slots[r.StreamID]
	c, ok := s.cams[r.CameraID]
	if !ok || c.slot != r.StreamID {
		switch {
		case sl.running == nil:
			reply.ErrorReason = fmt.Sprintf("stream %d has no active analysis", r.StreamID)
		case ok:
			reply.ErrorReason = fmt.Sprintf("camera %d not found on stream %d (it is on stream %d)", r.CameraID, r.StreamID, c.slot)
		default:
			reply.ErrorReason = fmt.Sprintf("camera %d not found on stream %d", r.CameraID, r.StreamID)
		}
		return res
	}
	reply.Status = protocol.StatusOK
	res.Changed = true
	if sl.running == c {
		reply.Message = fmt.Sprintf("Analysis on stream %d (camera %d) interrupted and reset.", r.StreamID, r.CameraID)
		res.Commands = append(res.Commands, Command{Op: OpStop, Slot: c.slot})
		s.retire(c, "been interrupted")
		sl.running = nil
		s.next(c.slot, &res)
		return res
	}
	for i, w := range sl.waiting {
		if w == c {
			sl.waiting = append(sl.waiting[:i:i], sl.waiting[i+1:]...)
			break
		}
	}
	s.retire(c, "been removed from the queue")
	reply.Message = fmt.Sprintf("Queued camera %d removed from stream %d.", r.CameraID, r.StreamID)
	return res
}

// FileStarted records that the engine decoded the first frame of the slot's file.
func (s *State) FileStarted(slot int, fileID int64) Result {
	c, why := s.playing(slot, fileID)
	if c == nil {
		return Result{Ignored: why}
	}
	c.started = true
	return Result{Changed: true}
}

// FileDone records that the slot's file ended normally: file_done, then the next file
// or the camera's completion.
func (s *State) FileDone(slot int, fileID int64, frames uint64) Result {
	return s.finish(slot, fileID, false, func(c *camera, f *file) any {
		return &protocol.FileDone{RequestID: f.RequestID, StreamID: slot, CameraID: c.id,
			FileID: f.FileID, ProcessedFile: f.FileName, Frames: frames}
	})
}

// FileFailed records that the slot's file could not be (fully) played (an engine
// file_error, or a play the engine refused): file_error, then the camera moves on.
func (s *State) FileFailed(slot int, fileID int64, reason string) Result {
	return s.finish(slot, fileID, true, func(c *camera, f *file) any {
		return &protocol.FileError{RequestID: f.RequestID, StreamID: slot, CameraID: c.id,
			FileID: f.FileID, CurrentFile: f.FileName, ErrorReason: reason}
	})
}

// finish ends the slot's current file with the event event builds, counts it, and
// moves the camera on.
func (s *State) finish(slot int, fileID int64, failed bool, event func(*camera, *file) any) Result {
	c, why := s.playing(slot, fileID)
	if c == nil {
		return Result{Ignored: why}
	}
	res := Result{Changed: true, Events: []any{event(c, c.current)}}
	if failed {
		c.failed++
	} else {
		c.done++
	}
	c.current, c.started, c.down = nil, false, false
	s.advance(slot, &res)
	return res
}

// StreamLost reports an outage of the live source playing on slot: the engine
// reconnects (willRetry), or gives up and a file_error follows. FastAPI hears of an
// outage once: the engine's stream_lost of each failed retry that follows is left out
// (Ignored), until the stream resumes or the engine gives up.
func (s *State) StreamLost(slot int, fileID int64, reason string, willRetry bool) Result {
	c, why := s.playing(slot, fileID)
	if c == nil {
		return Result{Ignored: why}
	}
	if c.down && willRetry {
		return Result{Ignored: fmt.Sprintf("camera %d: a retry of the outage already reported", c.id)}
	}
	c.down = true
	return Result{Events: []any{&protocol.StreamLost{RequestID: c.current.RequestID, StreamID: slot, CameraID: c.id,
		FileID: fileID, Reason: reason, WillRetry: willRetry}}}
}

// StreamResumed reports the first frame of slot's live source after an outage.
func (s *State) StreamResumed(slot int, fileID int64, downMS int64, attempts int, trackerKept bool) Result {
	c, why := s.playing(slot, fileID)
	if c == nil {
		return Result{Ignored: why}
	}
	c.down = false
	return Result{Events: []any{&protocol.StreamResumed{RequestID: c.current.RequestID, StreamID: slot, CameraID: c.id,
		FileID: fileID, DownMS: downMS, Attempts: attempts, TrackerKept: trackerKept}}}
}

// EngineLost ends the file each running camera had in the engine with a file_error
// giving reason (it is not played again: a file that crashed the engine must not
// crash it twice) and holds every slot until EngineBack. Each running camera's next
// file starts with a tracker reset, as the tracker state died with the engine.
func (s *State) EngineLost(reason string) Result {
	s.Hold()
	res := Result{Changed: true}
	for i := range s.slots {
		c := s.slots[i].running
		if c == nil {
			continue
		}
		if f := c.current; f != nil {
			res.Events = append(res.Events, &protocol.FileError{RequestID: f.RequestID, StreamID: i, CameraID: c.id,
				FileID: f.FileID, CurrentFile: f.FileName, ErrorReason: reason})
			c.failed++
			c.current, c.started = nil, false
		}
		if c.played {
			c.played, c.reset = false, true
		}
	}
	return res
}

// Hold stops the slots from playing until EngineBack: the engine is gone.
func (s *State) Hold() { s.held = true }

// EngineBack releases the slots held by EngineLost: each plays its next file or
// completes its camera.
func (s *State) EngineBack() Result {
	s.held = false
	res := Result{Changed: true}
	for i := range s.slots {
		s.advance(i, &res)
	}
	return res
}

// OldestQueued returns when the oldest file waiting on slot (not in the engine, of its
// running camera or of a queued one) arrived; ok is false when no file waits.
func (s *State) OldestQueued(slot int) (at time.Time, ok bool) {
	if slot < 0 || slot >= len(s.slots) {
		return time.Time{}, false
	}
	sl := &s.slots[slot]
	consider := func(c *camera) {
		if t, has := c.oldest(); has && (!ok || t.Before(at)) {
			at, ok = t, true
		}
	}
	if sl.running != nil {
		consider(sl.running)
	}
	for _, c := range sl.waiting {
		consider(c)
	}
	return at, ok
}

// InFlight lists the running cameras with the file each has in the engine.
func (s *State) InFlight() []InFlight {
	out := []InFlight{}
	for i := range s.slots {
		c := s.slots[i].running
		if c == nil {
			continue
		}
		in := InFlight{StreamID: i, CameraID: c.id}
		if c.current != nil {
			in.FileID = protocol.Int64(c.current.FileID)
		}
		out = append(out, in)
	}
	return out
}

// playing returns the running camera of slot when fileID is its current file, else
// nil and why the event does not apply.
func (s *State) playing(slot int, fileID int64) (*camera, string) {
	if slot < 0 || slot >= len(s.slots) {
		return nil, fmt.Sprintf("slot %d out of range (0..%d)", slot, len(s.slots)-1)
	}
	c := s.slots[slot].running
	switch {
	case c == nil:
		return nil, fmt.Sprintf("slot %d runs no camera (event for file %d)", slot, fileID)
	case c.current == nil:
		return nil, fmt.Sprintf("camera %d on slot %d has no file in the engine (event for file %d)", c.id, slot, fileID)
	case c.current.FileID != fileID:
		return nil, fmt.Sprintf("slot %d plays file %d, not %d", slot, c.current.FileID, fileID)
	}
	return c, ""
}

// advance plays the running camera's next file, or completes the camera (then starts
// the next queued one) when it has no file left after its eos.
func (s *State) advance(slot int, res *Result) {
	for {
		c := s.slots[slot].running
		if c == nil || c.current != nil || s.held {
			return
		}
		if f, ok := c.pop(); ok {
			c.current, c.started = &f, false
			res.Commands = append(res.Commands, Command{Op: OpPlay, Slot: slot, FileID: f.FileID, URI: toURI(f.FilePath),
				NewCamera: !c.played, OutputPath: f.OutputPath})
			res.Events = append(res.Events, &protocol.ProcessingStarted{RequestID: f.RequestID, StreamID: slot,
				CameraID: c.id, FileID: f.FileID, CurrentFile: f.FileName, TrackerReset: c.reset})
			c.played, c.reset = true, false
			return
		}
		if !c.eos {
			return // a fileset waiting for push_file
		}
		reqID := c.eosReq
		if reqID == "" {
			reqID = c.reqID
		}
		s.retire(c, "finished")
		s.slots[slot].running = nil
		msg := fmt.Sprintf("Analysis for camera %d complete. Stream %d is free.", c.id, slot)
		if w := s.slots[slot].waiting; len(w) > 0 {
			msg = fmt.Sprintf("Analysis for camera %d complete. Stream %d continues with queued camera %d.", c.id, slot, w[0].id)
		}
		res.Events = append(res.Events, &protocol.AnalysisComplete{RequestID: reqID, StreamID: slot, CameraID: c.id,
			Status: protocol.StatusDone, ProcessedCount: c.done, FailedCount: c.failed, Message: msg})
		res.Commands = append(res.Commands, Command{Op: OpReset, Slot: slot})
		s.next(slot, res)
		return
	}
}

// next starts the first queued camera of an idle slot.
func (s *State) next(slot int, res *Result) {
	sl := &s.slots[slot]
	if sl.running != nil || len(sl.waiting) == 0 {
		return
	}
	sl.running = sl.waiting[0]
	sl.waiting[0] = nil
	sl.waiting = sl.waiting[1:]
	if len(sl.waiting) == 0 {
		sl.waiting = nil
	}
	s.advance(slot, res)
}

// retire forgets a camera, remembering briefly how it ended.
func (s *State) retire(c *camera, how string) {
	delete(s.cams, c.id)
	if _, ok := s.finished[c.id]; !ok {
		s.finishedOrder = append(s.finishedOrder, c.id)
	}
	s.finished[c.id] = finished{slot: c.slot, how: how}
	if len(s.finishedOrder) > finishedMemory {
		delete(s.finished, s.finishedOrder[0])
		s.finishedOrder = s.finishedOrder[1:]
	}
}

func (c *camera) add(it protocol.FileItem, reqID string) {
	c.known[it.FileID] = struct{}{}
	c.queue = append(c.queue, file{FileID: it.FileID, FileName: it.FileName, FilePath: it.FilePath,
		OutputPath: it.OutputPath, RequestID: reqID})
}

// arrived records that the pending files not marked yet arrived at now.
func (c *camera) arrived(now time.Time) {
	upto := c.popped + uint64(len(c.pending()))
	if n := len(c.arrivals); upto == c.popped || n > 0 && c.arrivals[n-1].upto >= upto {
		return // none (a push of the eos item alone)
	}
	c.arrivals = append(c.arrivals, arrival{upto: upto, at: now})
}

// oldest is when the camera's oldest pending file arrived.
func (c *camera) oldest() (time.Time, bool) {
	if len(c.pending()) == 0 || len(c.arrivals) == 0 {
		return time.Time{}, false
	}
	return c.arrivals[0].at, true
}

func (c *camera) pop() (file, bool) {
	if c.head >= len(c.queue) {
		return file{}, false
	}
	c.popped++
	for len(c.arrivals) > 0 && c.arrivals[0].upto <= c.popped {
		c.arrivals = c.arrivals[1:]
	}
	// A snapshot may share queue[head:len] with the state writer, so the elements
	// up to len are never written again: popping only advances head, appends go
	// past len, and emptying or compacting the queue moves to a new array.
	f := c.queue[c.head]
	c.head++
	switch {
	case c.head == len(c.queue):
		c.queue, c.head = nil, 0
	case c.head >= 1024 && c.head*2 >= len(c.queue):
		c.queue, c.head = slices.Clone(c.queue[c.head:]), 0
	}
	return f, true
}

func (c *camera) pending() []file { return c.queue[c.head:] }

// toURI turns an absolute path into a file:// URI and leaves URIs as they are.
func toURI(p string) string {
	if len(p) > 0 && p[0] == '/' {
		return (&url.URL{Scheme: "file", Path: p}).String()
	}
	return p
}
