// Package enginetest is an in-process engine for tests: it has the method set the
// supervisor drives (supervisor.Engine) and plays "files" on a timer, so the
// supervisor's flows, crashes, hangs and restarts run under plain `go test` without
// the C engine.
//
// A play emits file_started at once and file_done after FileTime (or when the test
// calls Finish); a URI containing "/bad" gets file_error instead. Crash, Hang and
// Kill end or wedge the engine as a real one would. Each progress call moves a playing
// file's frame count on by one, except on a slot Wedge stopped (its pipeline stuck
// while the engine answers); StickyStop makes a stop answer without ending the file.
//
// A live URI (rtsp, rtsps, http, https, udp) plays until stopped, whatever FileTime
// says, and its progress carries the live object. One containing "/connecting" waits
// for Connect before its first frame; one containing "/404" is refused by its server:
// stream_lost without retry, then file_error. LoseStream and ResumeStream play an
// outage and the return.
package enginetest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
)

// Engine is one fake engine process. The zero value is not usable; call New.
type Engine struct {
	// FileTime is how long a file plays; 0 plays until Finish.
	FileTime time.Duration

	hello  engine.Hello
	events chan engine.Event
	done   chan struct{}

	mu      sync.Mutex
	seq     uint64 // line numbers, as the engine client counts them
	exit    engine.ExitStatus
	dead    bool
	closed  bool // events closed before the end (CloseSocket)
	hung    bool
	playing map[int]engine.PlayRequest
	frames  map[int]uint64               // of the file playing on a slot
	wedged  map[int]bool                 // slots whose frames do not move
	sticky  bool                         // a stop leaves the file playing
	live    map[int]*engine.LiveProgress // of the live slots playing
	plays   []engine.PlayRequest
	ops     []string
}

// New returns a ready engine with streams slots.
func New(streams int) *Engine {
	return &Engine{
		hello:   engine.Hello{Ready: true, Engine: "fake", Version: "test", Protocol: 1, Streams: streams, GPUIDs: []int{}},
		events:  make(chan engine.Event, 1<<16),
		done:    make(chan struct{}),
		playing: map[int]engine.PlayRequest{},
		frames:  map[int]uint64{},
		wedged:  map[int]bool{},
		live:    map[int]*engine.LiveProgress{},
	}
}

// NotFound is the reason of a live play of a URI containing "/404".
const NotFound = "rtsp server answered 404 Not Found"

func isLive(uri string) bool {
	for _, p := range []string{"rtsp://", "rtsps://", "http://", "https://", "udp://"} {
		if strings.HasPrefix(uri, p) {
			return true
		}
	}
	return false
}

// PID is the test process's own: metrics and pid files see a live process.
func (e *Engine) PID() int { return os.Getpid() }

// Hello returns the engine's hello reply.
func (e *Engine) Hello() engine.Hello { return e.hello }

// Events delivers the engine's events; it is closed when the engine ends.
func (e *Engine) Events() <-chan engine.Event { return e.events }

// Done is closed when the engine has ended.
func (e *Engine) Done() <-chan struct{} { return e.done }

// ExitStatus waits for Done and tells how the engine ended.
func (e *Engine) ExitStatus() engine.ExitStatus {
	<-e.done
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.exit
}

// Plays returns the play requests received so far.
func (e *Engine) Plays() []engine.PlayRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]engine.PlayRequest(nil), e.plays...)
}

// Ops returns the names of the requests received so far ("play 0", "stop 1", …).
func (e *Engine) Ops() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.ops...)
}

// Playing returns the file playing on slot.
func (e *Engine) Playing(slot int) (int64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	r, ok := e.playing[slot]
	return r.FileID, ok
}

// call waits like a request on the wire: an answer at once, none from a hung engine,
// an error from a dead one.
func (e *Engine) call(ctx context.Context, op string) error {
	e.mu.Lock()
	dead, hung := e.dead || e.closed, e.hung
	if !dead {
		e.ops = append(e.ops, op)
	}
	e.mu.Unlock()
	if dead {
		return fmt.Errorf("engine %s: %w", op, engine.ErrClosed)
	}
	if hung {
		select {
		case <-ctx.Done():
			return fmt.Errorf("engine %s: no reply: %w", op, ctx.Err())
		case <-e.done:
			return fmt.Errorf("engine %s: %w", op, engine.ErrClosed)
		}
	}
	return nil
}

// Play starts r on its slot (see the package comment).
func (e *Engine) Play(ctx context.Context, r engine.PlayRequest) error {
	if err := e.call(ctx, fmt.Sprintf("play %d", r.Slot)); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.Slot < 0 || r.Slot >= e.hello.Streams {
		return &engine.RequestError{Op: "play", Message: fmt.Sprintf("unknown slot %d", r.Slot)}
	}
	if _, busy := e.playing[r.Slot]; busy {
		return &engine.RequestError{Op: "play", Message: fmt.Sprintf("slot %d is busy", r.Slot)}
	}
	e.plays = append(e.plays, r)
	e.seq++ // the reply
	if strings.Contains(r.URI, "/bad") {
		e.emit(engine.Event{Kind: engine.EventFileError, Slot: r.Slot, FileID: r.FileID, Error: "Could not determine type of stream"})
		return nil
	}
	if isLive(r.URI) {
		if strings.Contains(r.URI, "/404") {
			e.emit(engine.Event{Kind: engine.EventStreamLost, Slot: r.Slot, FileID: r.FileID,
				Lost: &engine.StreamLost{Reason: NotFound, Attempt: 1}})
			e.emit(engine.Event{Kind: engine.EventFileError, Slot: r.Slot, FileID: r.FileID, Error: NotFound})
			return nil
		}
		e.playing[r.Slot] = r
		e.live[r.Slot] = &engine.LiveProgress{State: engine.LiveConnecting}
		if !strings.Contains(r.URI, "/connecting") {
			e.connect(r.Slot)
		}
		return nil
	}
	e.playing[r.Slot] = r
	e.frames[r.Slot] = 0
	e.emit(engine.Event{Kind: engine.EventFileStarted, Slot: r.Slot, FileID: r.FileID})
	if e.FileTime > 0 {
		time.AfterFunc(e.FileTime, func() { e.Finish(r.Slot, r.FileID) })
	}
	return nil
}

// Finish ends fileID on slot normally (file_done) if it still plays there and the slot
// is not wedged.
func (e *Engine) Finish(slot int, fileID int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r, ok := e.playing[slot]; !ok || r.FileID != fileID || e.dead || e.hung || e.wedged[slot] {
		return
	}
	delete(e.playing, slot)
	delete(e.live, slot)
	e.emit(engine.Event{Kind: engine.EventFileDone, Slot: slot, FileID: fileID, Frames: 30})
}

// Connect gives a connecting live slot its first frame (file_started).
func (e *Engine) Connect(slot int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if l := e.live[slot]; l != nil && l.State == engine.LiveConnecting && !e.dead && !e.hung {
		e.connect(slot)
	}
}

// connect starts a live slot's frames; e.mu is held.
func (e *Engine) connect(slot int) {
	age := int64(0)
	l := e.live[slot]
	l.State, l.FPS, l.LastFrameAgeMS = engine.LivePlaying, 30, &age
	e.emit(engine.Event{Kind: engine.EventFileStarted, Slot: slot, FileID: e.playing[slot].FileID})
}

// LoseStream plays an outage of the live source on slot: stream_lost, then (unless
// willRetry) file_error with the same reason and the slot idle.
func (e *Engine) LoseStream(slot int, reason string, willRetry bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, r := e.live[slot], e.playing[slot]
	if l == nil || e.dead || e.hung {
		return
	}
	l.State, l.FPS = engine.LiveReconnecting, 0
	age := int64(1000)
	l.LastFrameAgeMS = &age
	e.emit(engine.Event{Kind: engine.EventStreamLost, Slot: slot, FileID: r.FileID,
		Lost: &engine.StreamLost{Reason: reason, WillRetry: willRetry, Attempt: 1, RetryInMS: 1000}})
	if !willRetry {
		delete(e.playing, slot)
		delete(e.live, slot)
		e.emit(engine.Event{Kind: engine.EventFileError, Slot: slot, FileID: r.FileID, Error: reason})
	}
}

// ResumeStream gives a reconnecting live slot its frames back (stream_resumed).
func (e *Engine) ResumeStream(slot int, downMS int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	l, r := e.live[slot], e.playing[slot]
	if l == nil || l.State != engine.LiveReconnecting || e.dead || e.hung {
		return
	}
	age := int64(0)
	l.State, l.FPS, l.LastFrameAgeMS = engine.LivePlaying, 30, &age
	l.Reconnects++ // outages that ended in stream_resumed
	e.emit(engine.Event{Kind: engine.EventStreamResumed, Slot: slot, FileID: r.FileID,
		Resumed: &engine.StreamResumed{DownMS: downMS, Attempts: 1, TrackerKept: true}})
}

// emit queues one event; e.mu is held.
func (e *Engine) emit(ev engine.Event) {
	if e.dead || e.closed {
		return
	}
	e.seq++
	ev.Seq = e.seq
	e.events <- ev
}

// Stop stops slot at once.
func (e *Engine) Stop(ctx context.Context, slot int) (engine.StopResult, error) {
	if err := e.call(ctx, fmt.Sprintf("stop %d", slot)); err != nil {
		return engine.StopResult{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	r, was := e.playing[slot]
	if !e.sticky {
		delete(e.playing, slot)
		delete(e.live, slot)
	}
	e.seq++
	return engine.StopResult{Seq: e.seq, WasPlaying: was, FileID: r.FileID, Frames: e.frames[slot]}, nil
}

// Reset resets slot's per-camera state.
func (e *Engine) Reset(ctx context.Context, slot int) error {
	if err := e.call(ctx, fmt.Sprintf("reset %d", slot)); err != nil {
		return err
	}
	e.mu.Lock()
	e.seq++
	e.mu.Unlock()
	return nil
}

// Progress reports every slot, half way through its file when playing.
func (e *Engine) Progress(ctx context.Context) ([]engine.SlotProgress, error) {
	if err := e.call(ctx, "progress"); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	out := make([]engine.SlotProgress, e.hello.Streams)
	for i := range out {
		out[i] = engine.SlotProgress{Slot: i, State: engine.SlotIdle}
		if r, ok := e.playing[i]; ok {
			pos, dur := int64(500_000_000), int64(1_000_000_000)
			if l := e.live[i]; !e.wedged[i] && (l == nil || l.State == engine.LivePlaying) {
				e.frames[i]++
			}
			out[i] = engine.SlotProgress{Slot: i, State: engine.SlotPlaying, FileID: &r.FileID, PositionNS: &pos, DurationNS: &dur,
				Frames: e.frames[i]}
			if l := e.live[i]; l != nil {
				c := *l
				out[i].DurationNS, out[i].Live = nil, &c
			}
		}
	}
	return out, nil
}

// Shutdown ends the engine with exit code 0, or fails like a real one when hung
// (the caller then kills it).
func (e *Engine) Shutdown(ctx context.Context) error {
	if err := e.call(ctx, "shutdown"); err != nil {
		e.end(engine.ExitStatus{Code: -1, Signal: "SIGKILL"})
		return err
	}
	e.end(engine.ExitStatus{Code: 0})
	return nil
}

// Kill ends the engine as SIGKILL does.
func (e *Engine) Kill() { e.end(engine.ExitStatus{Code: -1, Signal: "SIGKILL"}) }

// Crash ends the engine on its own, as a signal such as "SIGSEGV" would.
func (e *Engine) Crash(signal string) { e.end(engine.ExitStatus{Code: -1, Signal: signal}) }

// CloseSocket closes the event stream while the engine lives on, as an engine that
// dropped its control connection; requests fail from then on, and Kill ends it.
func (e *Engine) CloseSocket() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.dead && !e.closed {
		e.closed = true
		close(e.events)
	}
}

// Wedge stops the frames of slot (true) or lets them move again (false), for the file
// playing there and the ones after it: a pipeline stuck while the engine answers.
func (e *Engine) Wedge(slot int, wedged bool) {
	e.mu.Lock()
	e.wedged[slot] = wedged
	e.mu.Unlock()
}

// StickyStop makes stop answer without ending the file (on), as a slot whose source
// cannot go down.
func (e *Engine) StickyStop(on bool) {
	e.mu.Lock()
	e.sticky = on
	e.mu.Unlock()
}

// Hang makes the engine stop answering, as SIGSTOP does; Kill still ends it.
func (e *Engine) Hang() {
	e.mu.Lock()
	e.hung = true
	e.mu.Unlock()
}

func (e *Engine) end(st engine.ExitStatus) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.dead {
		return
	}
	e.dead, e.exit = true, st
	if !e.closed {
		close(e.events)
	}
	close(e.done)
}
