package engine

import (
	"context"
	"fmt"
)

// EventKind is the "event" member of an engine's event line (docs/engine-protocol.md).
type EventKind string

// The engine's events. Start takes ready and rejected; Events delivers the others.
const (
	EventReady         EventKind = "ready"    // the pipeline is built: requests may follow
	EventRejected      EventKind = "rejected" // another client holds the engine
	EventFileStarted   EventKind = "file_started"
	EventFileDone      EventKind = "file_done"
	EventFileError     EventKind = "file_error"
	EventStreamLost    EventKind = "stream_lost"
	EventStreamResumed EventKind = "stream_resumed"
	EventFatal         EventKind = "fatal" // the pipeline failed; the engine exits next
)

// States of a slot in the reply to Progress (SlotProgress.State).
const (
	SlotIdle    = "idle"
	SlotPlaying = "playing"
)

// States of a live source (LiveProgress.State).
const (
	LiveConnecting   = "connecting"
	LivePlaying      = "playing"
	LiveReconnecting = "reconnecting"
)

// Event is one engine event.
type Event struct {
	// Seq is the position of the event's line in everything received from the engine,
	// counted from 1 over replies and events alike (Events leaves out a slot's events
	// with a smaller Seq than its last stop reply, StopResult.Seq).
	Seq uint64
	// Kind is EventFileStarted, EventFileDone, EventFileError, EventStreamLost,
	// EventStreamResumed or EventFatal.
	Kind EventKind
	// Slot and FileID name the file; Slot is -1 for EventFatal.
	Slot   int
	FileID int64
	// Frames and CameraFrames are set on EventFileDone.
	Frames, CameraFrames uint64
	// MonoNS is the engine's CLOCK_MONOTONIC time of the first (EventFileStarted) or
	// last (EventFileDone) frame.
	MonoNS int64
	// Error is set on EventFileError and EventFatal.
	Error string
	// Lost is set on EventStreamLost, Resumed on EventStreamResumed (live sources).
	Lost    *StreamLost
	Resumed *StreamResumed
}

// StreamLost is a live source's outage: EOS, an error or a stall. WillRetry false is
// followed by the file's "file_error".
type StreamLost struct {
	Reason    string
	WillRetry bool
	Attempt   int   // the reconnect attempt about to be made (or the last one)
	RetryInMS int64 // until that attempt
}

// StreamResumed is a live source's first frame after a reconnect.
type StreamResumed struct {
	DownMS      int64 // from the outage to this frame
	Attempts    int   // reconnect attempts it took
	TrackerKept bool  // the outage was short enough to keep the tracker state
}

// PlayRequest starts one file on an idle slot.
type PlayRequest struct {
	Slot   int
	FileID int64
	URI    string
	// NewCamera resets the slot's per-camera state (tracker, camera frame index) first.
	NewCamera bool
	// OutputPath is the per-file output; "" for none.
	OutputPath string
}

// StopResult is the reply to Stop.
type StopResult struct {
	// Seq is the position of the reply line (see Event.Seq). Events of the stopped
	// file came before it, and Events leaves them out.
	Seq        uint64
	WasPlaying bool
	// FileID and Frames describe the file that was stopped, when WasPlaying.
	FileID int64
	Frames uint64
}

// SlotProgress is one slot in the reply to Progress; nil pointers are JSON nulls.
type SlotProgress struct {
	Slot  int
	State string // SlotIdle or SlotPlaying
	// FileID is nil when idle.
	FileID *int64
	// PositionNS is the last frame's PTS from the file start; DurationNS the file's
	// duration; nil when unknown.
	PositionNS, DurationNS *int64
	// Frames counts the current (or, when idle, the last) file's frames, CameraFrames
	// those since the last camera reset.
	Frames, CameraFrames uint64
	// Live is set for a slot playing a live source (rtsp, http, udp), nil otherwise.
	Live *LiveProgress
}

// LiveProgress is a live slot's connection state in the reply to Progress.
type LiveProgress struct {
	State          string  `json:"state"` // LiveConnecting, LivePlaying or LiveReconnecting
	FPS            float64 `json:"fps"`
	LastFrameAgeMS *int64  `json:"last_frame_age_ms"` // nil before the first frame
	Reconnects     int     `json:"reconnects"`
}

type helloReply struct {
	Ready      bool   `json:"ready"`
	Engine     string `json:"engine"`
	Version    string `json:"version"`
	Protocol   int    `json:"protocol"`
	Streams    int    `json:"streams"`
	ConfigPath string `json:"config_path"`
	GPUIDs     []int  `json:"gpu_ids"`
}

// Play starts r.FileID from r.URI on the idle slot r.Slot. A file that cannot be played
// is not refused: a "file_error" event follows. A refusal (slot busy or unknown,
// engine not ready, bad field) is a *RequestError.
func (e *Engine) Play(ctx context.Context, r PlayRequest) error {
	_, err := e.call(ctx, request{Op: opPlay, Slot: &r.Slot, FileID: &r.FileID, URI: r.URI,
		NewCamera: r.NewCamera, OutputPath: r.OutputPath})
	return err
}

// Stop stops slot at once and resets its per-camera state; an idle slot gives
// WasPlaying false.
func (e *Engine) Stop(ctx context.Context, slot int) (StopResult, error) {
	res, err := e.call(ctx, request{Op: opStop, Slot: &slot})
	if err != nil {
		return StopResult{}, err
	}
	var rep struct {
		WasPlaying bool   `json:"was_playing"`
		FileID     int64  `json:"file_id"`
		Frames     uint64 `json:"frames"`
	}
	if err := res.decode(&rep); err != nil {
		return StopResult{}, fmt.Errorf("engine stop: %w", err)
	}
	return StopResult{Seq: res.seq, WasPlaying: rep.WasPlaying, FileID: rep.FileID, Frames: rep.Frames}, nil
}

// Reset resets the per-camera state of the idle slot (a camera completed).
func (e *Engine) Reset(ctx context.Context, slot int) error {
	_, err := e.call(ctx, request{Op: opReset, Slot: &slot})
	return err
}

// Progress returns every slot's progress, index = slot.
func (e *Engine) Progress(ctx context.Context) ([]SlotProgress, error) {
	res, err := e.call(ctx, request{Op: opProgress})
	if err != nil {
		return nil, err
	}
	var rep struct {
		Slots []struct {
			Slot         int           `json:"slot"`
			State        string        `json:"state"`
			FileID       *int64        `json:"file_id"`
			PositionNS   *int64        `json:"position_ns"`
			DurationNS   *int64        `json:"duration_ns"`
			Frames       uint64        `json:"frames"`
			CameraFrames uint64        `json:"camera_frames"`
			Live         *LiveProgress `json:"live"`
		} `json:"slots"`
	}
	if err := res.decode(&rep); err != nil {
		return nil, fmt.Errorf("engine progress: %w", err)
	}
	out := make([]SlotProgress, len(rep.Slots))
	for i, s := range rep.Slots {
		out[i] = SlotProgress{Slot: s.Slot, State: s.State, FileID: s.FileID, PositionNS: s.PositionNS,
			DurationNS: s.DurationNS, Frames: s.Frames, CameraFrames: s.CameraFrames, Live: s.Live}
	}
	return out, nil
}
