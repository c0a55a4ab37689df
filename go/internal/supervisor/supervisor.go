// Package supervisor is the run loop of an instance: one goroutine that owns the
// analysis state (kept by the store) and moves messages between the WebSocket link
// and the engine.
//
// Data flows one way each: link → protocol → store → engine, and engine events →
// store → link. Only this goroutine touches the state, so nothing in it locks.
// The engine may die or hang and be started again (lifecycle.go); the link and the
// queues outlive it.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/logs"
	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/pathcheck"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// Exit statuses of Run (see README.md).
const (
	ExitOK       = 0
	ExitFatal    = 1
	ExitCrashed  = 3
	ExitRejected = 4
)

const (
	progressTimeout = 500 * time.Millisecond
	flushTimeout    = 3 * time.Second
	// crashGrace is how long a crash report may wait for a connection before exit.
	crashGrace = 5 * time.Second
	// crashLogLines is how many engine log lines go into a crash report.
	crashLogLines = 20
)

// Engine is what the loop needs of the engine client (engine.Engine implements it,
// and so does the fake of go/internal/engine/enginetest).
type Engine interface {
	PID() int
	Hello() engine.Hello
	Events() <-chan engine.Event
	Done() <-chan struct{}
	ExitStatus() engine.ExitStatus
	Play(ctx context.Context, r engine.PlayRequest) error
	Stop(ctx context.Context, slot int) (engine.StopResult, error)
	Reset(ctx context.Context, slot int) error
	Progress(ctx context.Context) ([]engine.SlotProgress, error)
	Shutdown(ctx context.Context) error
	// Kill ends an engine known not to answer at once (SIGKILL).
	Kill()
}

// Options are the instance's identity and timings.
type Options struct {
	AppID       string
	ConfigPath  string // as given on the command line
	Version     string
	Start       time.Time
	StopTimeout time.Duration // graceful engine stop before SIGKILL (engine.DefaultStopTimeout)
	Link        link.Config   // Hello is filled in by Run
	// Restarts is how many engine restarts RestartWindow allows (0: an engine crash
	// ends the instance with ExitCrashed).
	Restarts      int
	RestartWindow time.Duration // DefaultRestartWindow when 0
	// Timings of the engine's liveness; the defaults when 0.
	CallTimeout   time.Duration // play, stop, reset (DefaultCallTimeout)
	ProbeInterval time.Duration // a progress call this often (DefaultProbeInterval)
	ProbeTimeout  time.Duration // and its deadline (DefaultProbeTimeout)
	BackoffMin    time.Duration // first restart delay (DefaultRestartBackoffMin)
	BackoffMax    time.Duration // restart delay cap (DefaultRestartBackoffMax)
	// StallTimeout is how long a playing file's frame count may stand still before the
	// slot counts as stalled (DefaultStallTimeout when 0; negative: the watchdog is off);
	// StopGrace how long a slot stopped for a stall may still show its file
	// (DefaultStopGrace when 0).
	StallTimeout time.Duration
	StopGrace    time.Duration
	// PathTimeout is the deadline of an input path's check (DefaultPathTimeout when 0);
	// PathCheck the check itself (pathcheck.Local when nil; tests inject one).
	PathTimeout time.Duration
	PathCheck   pathcheck.Func
	// Resume takes over the queues of a previous process with this APP_ID that did
	// not stop cleanly (state.json and its journals); without it they are kept as
	// state.json.prev and nothing is resumed.
	Resume bool
}

// Deps are the started parts the loop drives.
type Deps struct {
	Engine Engine
	// Restart starts a new engine like the first one (same config and socket); nil
	// when the engine is never restarted.
	Restart func(ctx context.Context) (Engine, error)
	Hello   engine.Hello
	Logs    *logs.Logs
	Log     zerolog.Logger
	Metrics *metrics.Sampler
	Dir     *instance.Dir
	// Stats is the Prometheus exporter's source, which Run serves (nil: no exporter).
	Stats *StatsSource
}

type loop struct {
	o     Options
	d     Deps
	log   zerolog.Logger
	link  *link.Link
	store *store.Store
	// state is the store's: read here, and changed through store.Apply but for what
	// the journal does not keep (store.State).
	state  *analysis.State
	limits protocol.Limits
	eng    engineRun

	liveDropped int
	clean       bool              // the stop is clean: the next process resumes nothing
	resumed     *protocol.Resumed // what was taken over from a previous process
	prom        promStats
	stats       <-chan chan<- promexport.Snapshot // the exporter's requests
	stalls      stallWatch                        // the frame-progress watchdog
	checks      pathChecks                        // plays waiting for their path check
}

// Run serves until terminate_app, a signal (ctx done), an engine crash past the
// restart budget or a refused handshake, and returns the process exit status.
func Run(ctx context.Context, o Options, d Deps) int {
	o.defaults()
	l := &loop{
		o:      o,
		d:      d,
		log:    d.Log.With().Str("component", "supervisor").Logger(),
		limits: protocol.Limits{Streams: d.Hello.Streams},
		stats:  d.Stats.serve(),
	}
	cfg := o.Link
	cfg.Hello = l.appReady
	l.link = link.New(cfg)
	l.store = store.Open(store.Options{Dir: d.Dir, AppID: o.AppID, Streams: d.Hello.Streams, Resume: o.Resume, Log: l.log})
	defer l.store.Close()
	l.state, l.resumed = l.store.State(), l.store.Resumed()
	l.eng.init()
	l.stalls = newStallWatch(d.Hello.Streams, o.StallTimeout, o.StopGrace)
	l.checks = newPathChecks(d.Hello.Streams, pathcheck.New(d.Hello.Streams, o.PathTimeout, o.PathCheck))
	l.attach(d.Engine)
	l.store.Write(l.info())
	if l.resumed != nil {
		l.resumePlay()
	}

	// The link outlives ctx so that app_terminated can still go out after a signal.
	linkCtx, cancelLink := context.WithCancel(context.Background())
	linkErr := make(chan error, 1)
	go func() { linkErr <- l.link.Run(linkCtx) }()

	code := l.serve(ctx, linkErr)
	l.checks.cancelAll() // a check still stuck in the kernel sends nothing

	cancelLink()
	select {
	case <-linkErr:
	case <-time.After(flushTimeout):
		l.log.Warn().Msg("link did not close in time")
	}
	return code
}

// serve is the loop itself; it returns the exit status once the instance must stop.
func (l *loop) serve(ctx context.Context, linkErr <-chan error) int {
	live := l.d.Logs.Live()
	for {
		select {
		case <-ctx.Done():
			return l.shutdown(nil, "signal")
		case frame := <-l.link.Inbox():
			t0 := time.Now()
			req := l.handleFrame(frame, t0)
			l.log.Debug().Int("bytes", len(frame)).Dur("took", time.Since(t0)).Msg("frame served")
			if req != nil {
				return l.shutdown(req, "terminate_app")
			}
		case ev, ok := <-l.eng.events:
			if !ok {
				l.eng.events = nil
				l.socketClosed()
				break
			}
			l.handleEvent(ev)
		case <-l.eng.done:
			l.eng.exited = true
		case err := <-l.eng.hung:
			l.eng.lost = err
		case p := <-l.eng.progress:
			l.watchProgress(p)
		case r := <-l.checks.results:
			l.pathChecked(r)
		case <-l.eng.restartTimer.C:
			l.startEngine()
		case r := <-l.eng.starting:
			if code, stop := l.started(r); stop {
				return code
			}
		case line, ok := <-live:
			if !ok {
				live = nil
				continue
			}
			l.sendLive(line)
		case err := <-linkErr:
			var rej *link.Rejected
			if errors.As(err, &rej) {
				l.log.Error().Str("error_code", rej.Code).Str("error_message", rej.Message).
					Msg("FastAPI refused the handshake (execute_ack error); exiting")
			} else {
				l.log.Error().Err(err).Msg("link stopped")
			}
			l.stopEngine()
			l.flushState()
			if rej != nil {
				return ExitRejected
			}
			return ExitFatal
		case <-l.store.Due():
			l.flushState()
		case reply := <-l.stats:
			reply <- l.promSnapshot()
		}
		if l.eng.failed() {
			if code, stop := l.engineDown(); stop {
				return code
			}
		}
	}
}

// sendLive forwards a live log line while connected, queued behind pending replies
// (the logs package's token bucket already bounds the rate, so a storm cannot crowd
// out protocol messages). Lines produced while disconnected are not kept; their count
// goes into the next line's "dropped".
func (l *loop) sendLive(line logs.Line) {
	if !l.link.Connected() {
		l.liveDropped += 1 + line.Dropped
		return
	}
	l.link.Send(protocol.Encode(protocol.LogEvent{
		Timestamp: protocol.Timestamp(line.Time),
		Level:     line.Level,
		Source:    line.Source,
		Message:   line.Message,
		Dropped:   line.Dropped + l.liveDropped,
	}))
	l.prom.count(protocol.TypeLog)
	l.liveDropped = 0
}

func (l *loop) send(msg any) {
	b := protocol.Encode(msg)
	l.link.Send(b)
	l.prom.sentMsg(msg, time.Now())
	if m, ok := msg.(protocol.Message); ok {
		l.log.Debug().Str("type", m.MessageType()).Int("bytes", len(b)).Msg("queued to FastAPI")
	}
}

// handleFrame serves one server frame, received at now; it returns the terminate_app
// request when the instance must stop.
func (l *loop) handleFrame(frame []byte, now time.Time) *protocol.TerminateApp {
	req, rej := protocol.Decode(frame, l.limits)
	if rej != nil {
		l.prom.receivedMsg("")
		l.log.Warn().Str("reason", rej.Reason()).Int("bytes", len(frame)).Msg("rejected a message from FastAPI")
		l.send(rej.Reply)
		return nil
	}
	l.prom.receivedMsg(req.MessageType())
	const ev = zerolog.InfoLevel
	switch r := req.(type) {
	case *protocol.StartAnalysis:
		l.logRequest(ev, req)
		l.start(r, frame, now)
	case *protocol.PushFile:
		l.logRequest(ev, req)
		l.apply(l.store.Apply(store.Request(r, frame, now)))
	case *protocol.InterruptAnalysis:
		l.logRequest(ev, req)
		l.apply(l.store.Apply(store.Request(r, frame, now)))
	case *protocol.TerminateApp:
		l.logRequest(ev, req)
		return r
	case *protocol.QueryMetrics:
		l.logRequest(zerolog.DebugLevel, req)
		l.send(l.metrics(r.RequestID))
	case *protocol.QueryAnalysisStatus:
		l.logRequest(zerolog.DebugLevel, req)
		l.send(l.markStalls(l.state.Status(r, l.progress(), time.Now())))
	case *protocol.QueryLogs:
		l.logRequest(zerolog.DebugLevel, req)
		l.send(l.recentLogs(r))
	case *protocol.ExecuteAck:
		l.log.Warn().Str("status", r.Status).Msg("execute_ack outside a handshake ignored")
	default:
		l.log.Error().Str("type", req.MessageType()).Msg("request type without a handler")
	}
	return nil
}

func (l *loop) logRequest(level zerolog.Level, req protocol.Request) {
	l.log.WithLevel(level).Str("type", req.MessageType()).Str("request_id", req.ReqID()).Msg("request")
}

// start checks a start_analysis (received at now) against the state, prepares
// output_dir, then starts or queues the camera; a refused start creates nothing.
func (l *loop) start(r *protocol.StartAnalysis, frame []byte, now time.Time) {
	if rej := l.state.CheckStart(r); rej != nil {
		l.send(rej)
		return
	}
	if err := os.MkdirAll(r.OutputDir, 0o755); err != nil {
		l.send(analysis.StartError(r, fmt.Sprintf("cannot create output_dir: %v", err)))
		return
	}
	l.apply(l.store.Apply(store.Request(r, frame, now)))
}

// apply sends a state result's reply and events, then runs its engine commands. A
// file the engine refuses is fed back into the state as a failed file; the results
// that produces are applied in turn (iteratively: a long queue of bad files must not
// grow the stack). Once the engine is lost nothing more is sent to it.
func (l *loop) apply(res analysis.Result) {
	for work := []analysis.Result{res}; len(work) > 0; work = work[1:] {
		r := work[0]
		if r.Reply != nil {
			l.send(r.Reply)
		}
		for _, ev := range r.Events {
			l.send(ev)
		}
		for _, c := range r.Commands {
			if !l.eng.up() {
				// A new engine starts with every slot idle and reset: a stop or
				// reset has nothing to do, and plays wait (the state is held).
				break
			}
			if next, ok := l.run(c); ok {
				work = append(work, next)
			}
		}
		if r.Changed {
			l.store.Changed()
		}
	}
}

// run sends one command to the engine; a play of a local file waits for its path check
// (paths.go) and goes to the engine from there. A refusal of a play becomes a failed
// file (the returned result). Any other failure — no reply in time, connection gone —
// leaves the engine's state unknown: it is recorded as lost and the loop kills it.
func (l *loop) run(c analysis.Command) (analysis.Result, bool) {
	if c.Op == analysis.OpPlay {
		if path, ok := localPath(c.URI); ok {
			l.checks.start(c, path)
			return analysis.Result{}, false
		}
		return l.play(c)
	}
	l.checks.cancel(c.Slot)
	ctx, cancel := context.WithTimeout(l.eng.ctx, l.o.CallTimeout)
	defer cancel()
	eng := l.eng.cur
	var err error
	switch c.Op {
	case analysis.OpStop:
		// The stopped file's last events never come (engine.Engine.Events).
		_, err = eng.Stop(ctx, c.Slot)
	case analysis.OpReset:
		err = eng.Reset(ctx, c.Slot)
	}
	var refused *engine.RequestError
	if errors.As(err, &refused) {
		// stop/reset of a valid slot is never refused; log it and carry on.
		l.log.Error().Err(err).Str("op", c.Op.String()).Int("slot", c.Slot).Msg("engine refused a command")
	} else if err != nil {
		l.eng.lost = fmt.Errorf("%s on slot %d: %w", c.Op, c.Slot, err)
	}
	return analysis.Result{}, false
}

// play sends a play to the engine (see run); the watchdog watches the file from here.
func (l *loop) play(c analysis.Command) (analysis.Result, bool) {
	ctx, cancel := context.WithTimeout(l.eng.ctx, l.o.CallTimeout)
	defer cancel()
	if c.OutputPath != "" {
		if err := os.MkdirAll(filepath.Dir(c.OutputPath), 0o755); err != nil {
			l.log.Warn().Err(err).Str("output_path", c.OutputPath).Msg("cannot create the output folder")
		}
	}
	sent := time.Now()
	err := l.eng.cur.Play(ctx, engine.PlayRequest{
		Slot: c.Slot, FileID: c.FileID, URI: c.URI, NewCamera: c.NewCamera, OutputPath: c.OutputPath,
	})
	var refused *engine.RequestError
	switch {
	case err == nil:
		l.stalls.played(c.Slot, c.FileID, time.Now())
		l.prom.played(c.Slot, c.FileID, sent)
	case errors.As(err, &refused) && l.stalls.stopPending(c.Slot):
		// The stalled file's stop did not take (the slot is still busy with it): failing
		// this file, and the next, would burn the camera's queue. The pipeline is stuck.
		l.log.Warn().Err(err).Int("slot", c.Slot).Int64("file_id", c.FileID).Msg("engine refused play after a stall stop")
		l.eng.lost = &stallError{why: fmt.Sprintf("stream %d refused file %d while its stalled file was being stopped: %s",
			c.Slot, c.FileID, refused.Message)}
	case errors.As(err, &refused):
		l.log.Warn().Err(err).Int("slot", c.Slot).Int64("file_id", c.FileID).Msg("engine refused play")
		reason := "engine refused the file: " + refused.Message
		return l.prom.failures(errorClass(refused.Message), l.store.Apply(store.Failed(c.Slot, c.FileID, reason))), true
	default:
		l.eng.lost = fmt.Errorf("%s on slot %d: %w", c.Op, c.Slot, err)
	}
	return analysis.Result{}, false
}

func (l *loop) handleEvent(ev engine.Event) {
	var res analysis.Result
	switch ev.Kind {
	case engine.EventFileStarted:
		res = l.state.FileStarted(ev.Slot, ev.FileID)
		if res.Ignored == "" {
			l.prom.firstFrame(ev.Slot, ev.FileID, time.Now())
			l.eng.probeSoon() // for the file's duration, before a short file ends
		}
	case engine.EventFileDone:
		l.log.Info().Int("slot", ev.Slot).Int64("file_id", ev.FileID).Uint64("frames", ev.Frames).Msg("file done")
		res = l.store.Apply(store.Done(ev.Slot, ev.FileID, ev.Frames))
		if res.Ignored == "" {
			l.prom.ended(ev.Slot, ev.FileID, time.Now())
		}
	case engine.EventFileError:
		l.log.Warn().Int("slot", ev.Slot).Int64("file_id", ev.FileID).Str("error", ev.Error).Msg("file failed")
		res = l.prom.failures(l.prom.engineErrorClass(ev.Slot, ev.FileID, ev.Error),
			l.store.Apply(store.Failed(ev.Slot, ev.FileID, ev.Error)))
	case engine.EventStreamLost:
		lost := ev.Lost
		if lost == nil {
			lost = &engine.StreamLost{Reason: "stream lost"}
		}
		l.log.Warn().Int("slot", ev.Slot).Int64("file_id", ev.FileID).Str("reason", lost.Reason).
			Bool("will_retry", lost.WillRetry).Int("attempt", lost.Attempt).Int64("retry_in_ms", lost.RetryInMS).
			Msg("live stream lost")
		// The engine handles the outage: the watchdog waits for its next attempt.
		l.stalls.activity(ev.Slot, ev.FileID, time.Now(), time.Duration(lost.RetryInMS)*time.Millisecond)
		res = l.state.StreamLost(ev.Slot, ev.FileID, lost.Reason, lost.WillRetry)
		if !lost.WillRetry && res.Ignored == "" {
			l.prom.gaveUpOn(ev.Slot, ev.FileID)
		}
	case engine.EventStreamResumed:
		r := ev.Resumed
		if r == nil {
			r = &engine.StreamResumed{}
		}
		l.log.Info().Int("slot", ev.Slot).Int64("file_id", ev.FileID).Int64("down_ms", r.DownMS).
			Int("attempts", r.Attempts).Bool("tracker_kept", r.TrackerKept).Msg("live stream resumed")
		l.stalls.activity(ev.Slot, ev.FileID, time.Now(), 0)
		res = l.state.StreamResumed(ev.Slot, ev.FileID, r.DownMS, r.Attempts, r.TrackerKept)
	case engine.EventFatal:
		l.log.Error().Str("error", ev.Error).Msg("engine reported a fatal pipeline error")
		return
	default:
		l.log.Warn().Str("event", string(ev.Kind)).Msg("unknown engine event")
		return
	}
	if res.Ignored != "" {
		l.log.Debug().Str("event", string(ev.Kind)).Int("slot", ev.Slot).Int64("file_id", ev.FileID).
			Str("why", res.Ignored).Msg("engine event ignored")
	}
	l.apply(res)
}

// progress asks the engine for per-slot positions and live states once per status
// query; without an answer (or without an engine) the status shows 0 % and no live
// object for running files.
func (l *loop) progress() analysis.Progress {
	playing := false
	for slot := 0; slot < l.state.Streams() && !playing; slot++ {
		_, playing = l.state.CurrentFile(slot)
	}
	var slots []engine.SlotProgress
	if playing && l.eng.up() { // nothing to ask when no file is in the engine
		ctx, cancel := context.WithTimeout(context.Background(), progressTimeout)
		var err error
		if slots, err = l.eng.cur.Progress(ctx); err != nil {
			l.log.Warn().Err(err).Msg("engine progress unavailable")
		}
		cancel()
		l.prom.progress(slots)
	}
	return func(slot int) (analysis.SlotProgress, bool) {
		if slot < 0 || slot >= len(slots) {
			return analysis.SlotProgress{}, false
		}
		p := slots[slot]
		// The engine may still report a file that ended before the reply.
		if cur, ok := l.state.CurrentFile(slot); !ok || p.FileID == nil || *p.FileID != cur {
			return analysis.SlotProgress{}, false
		}
		var out analysis.SlotProgress
		if p.PositionNS != nil && p.DurationNS != nil {
			out.PositionNS, out.DurationNS = *p.PositionNS, *p.DurationNS
		}
		if lv := p.Live; lv != nil {
			out.Live = &protocol.LiveStatus{State: lv.State, FPS: lv.FPS, LastFrameAgeMS: lv.LastFrameAgeMS,
				Reconnects: lv.Reconnects}
		}
		return out, true
	}
}

// shutdown stops the engine, says app_terminated and flushes it (when connected).
// req is nil for a signal.
func (l *loop) shutdown(req *protocol.TerminateApp, why string) int {
	l.log.Info().Str("reason", why).Msg("stopping")
	l.stopEngine()
	var rid *string
	msg := "DeepStream process exiting."
	if req != nil {
		rid = protocol.Str(req.RequestID)
	} else {
		msg = "DeepStream process exiting (signal)."
	}
	l.send(protocol.AppTerminated{RequestID: rid, Status: protocol.StatusOK, Message: msg})
	if l.link.Connected() {
		l.flushLink(flushTimeout, "app_terminated")
	}
	l.clean = true
	l.flushState()
	return ExitOK
}

// flushLink waits up to timeout for what was sent to be written, logging what was not.
func (l *loop) flushLink(timeout time.Duration, what string) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := l.link.Flush(ctx); err != nil {
		l.log.Warn().Err(err).Msg(what + " not delivered")
	}
}

// flushState hands a snapshot of the state to the store's writer now.
func (l *loop) flushState() { l.store.Save(l.info()) }

// info is what state.json says about the process.
func (l *loop) info() store.Info {
	return store.Info{EnginePID: l.eng.pid(), Connected: l.link.Connected(), Clean: l.clean}
}
