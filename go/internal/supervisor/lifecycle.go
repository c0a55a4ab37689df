package supervisor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/backoff"
	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// Defaults of the engine timings in Options.
const (
	DefaultRestartWindow     = 10 * time.Minute
	DefaultCallTimeout       = 3 * time.Second
	DefaultProbeInterval     = time.Second
	DefaultProbeTimeout      = 1500 * time.Millisecond
	DefaultRestartBackoffMin = 500 * time.Millisecond
	DefaultRestartBackoffMax = 10 * time.Second
	// DefaultPathTimeout bounds an input path's check: a local file answers in
	// microseconds, a network share in milliseconds; a mount silent for seconds is hung.
	DefaultPathTimeout = 5 * time.Second
)

// closedGrace is how long a broken control connection waits for the process to exit on
// its own, so that a crash is reported as the crash it is.
const closedGrace = time.Second

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.StopTimeout, engine.DefaultStopTimeout)
	set(&o.RestartWindow, DefaultRestartWindow)
	set(&o.CallTimeout, DefaultCallTimeout)
	set(&o.ProbeInterval, DefaultProbeInterval)
	set(&o.ProbeTimeout, DefaultProbeTimeout)
	set(&o.BackoffMin, DefaultRestartBackoffMin)
	set(&o.BackoffMax, DefaultRestartBackoffMax)
	if o.StallTimeout == 0 { // negative: off
		o.StallTimeout = DefaultStallTimeout
	}
	set(&o.StopGrace, DefaultStopGrace)
	set(&o.PathTimeout, DefaultPathTimeout)
}

// engineRun is the engine as the loop sees it: the running process (nil while it
// is down), its channels, why it failed, and the restart bookkeeping. The channels
// are nil while they have nothing to say, so the loop's select skips them.
type engineRun struct {
	cur    Engine
	events <-chan engine.Event
	done   <-chan struct{}
	hung   chan error         // the liveness watcher's verdict
	watch  context.CancelFunc // stops the watcher
	// progress carries the watcher's progress replies to the frame-progress watchdog
	// (the newest only: the loop never waits for the watcher, nor it for the loop).
	progress chan progressReply
	// probe asks the watcher for a progress call now, besides its ticks.
	probe chan struct{}
	// ctx bounds the loop's commands: the watcher cancels it when the engine hangs,
	// so a command waiting for a reply gives up as soon as the hang is known.
	ctx context.Context

	exited bool  // Done fired
	lost   error // the engine failed to answer: its state is unknown

	restarts     []time.Time // restarts inside the window, oldest first
	downSince    time.Time
	restartTimer *time.Timer
	starting     chan startResult // non-nil while a restarted engine starts
	cancelStart  context.CancelFunc
}

// progressReply is one answer to the liveness check, as received at at.
type progressReply struct {
	at    time.Time
	slots []engine.SlotProgress
}

type startResult struct {
	eng Engine
	err error
}

func (e *engineRun) init() {
	e.restartTimer = time.NewTimer(time.Hour)
	e.restartTimer.Stop()
}

func (e *engineRun) up() bool { return e.cur != nil && e.lost == nil }

func (e *engineRun) failed() bool { return e.cur != nil && (e.exited || e.lost != nil) }

func (e *engineRun) pid() int {
	if e.cur == nil {
		return 0
	}
	return e.cur.PID()
}

// attach makes eng the current engine and starts watching it.
func (l *loop) attach(eng Engine) {
	e := &l.eng
	e.cur, e.events, e.done = eng, eng.Events(), eng.Done()
	e.exited, e.lost = false, nil
	ctx, cancel := context.WithCancel(context.Background())
	e.ctx, e.watch = ctx, cancel
	e.hung = make(chan error, 1)
	e.progress = make(chan progressReply, 1)
	e.probe = make(chan struct{}, 1)
	l.stalls.reset()
	go watch(ctx, cancel, eng, l.o.ProbeInterval, l.o.ProbeTimeout, e.probe, e.hung, e.progress)
}

// probeSoon asks the watcher for a progress call now (one already asked for is enough);
// its reply arrives as the ticks' do. It never blocks.
func (e *engineRun) probeSoon() {
	select {
	case e.probe <- struct{}{}:
	default:
	}
}

// watch asks eng for its progress every interval, and at once when asked on probe; a
// call without an answer within timeout means the engine hangs: it is reported on hung
// (once) and ctx is cancelled. A refusal is an answer. A broken connection is left to
// Done when the process exits soon after. Each answer goes to progress, replacing one
// the loop has not taken yet.
func watch(ctx context.Context, cancel context.CancelFunc, eng Engine, interval, timeout time.Duration,
	probe <-chan struct{}, hung chan<- error, progress chan progressReply) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-eng.Done():
			return
		case <-t.C:
		case <-probe:
		}
		pctx, cancelProbe := context.WithTimeout(ctx, timeout)
		slots, err := eng.Progress(pctx)
		cancelProbe()
		if err == nil {
			offer(progress, progressReply{at: time.Now(), slots: slots})
		}
		var refused *engine.RequestError
		if err == nil || errors.As(err, &refused) || ctx.Err() != nil {
			continue
		}
		if errors.Is(err, engine.ErrClosed) {
			select {
			case <-eng.Done():
				return
			case <-ctx.Done():
				return
			case <-time.After(closedGrace):
			}
		}
		hung <- fmt.Errorf("no answer to the liveness check within %v: %w", timeout, err)
		cancel()
		return
	}
}

// offer puts r on ch, replacing a value nobody took yet; it never blocks (one sender).
func offer(ch chan progressReply, r progressReply) {
	for {
		select {
		case ch <- r:
			return
		default:
			select {
			case <-ch:
			default:
			}
		}
	}
}

// socketClosed handles the end of the engine's event stream. Normally the process
// has exited too; an engine that dropped its socket but lives on is useless.
func (l *loop) socketClosed() {
	select {
	case <-l.eng.done:
		l.eng.exited = true
	case <-time.After(closedGrace):
		l.eng.lost = errors.New("the engine closed its control connection")
	}
}

// engineDown handles an engine that exited or failed to answer: it is killed when
// it still runs, its last events are applied, the crash is reported, and the engine
// is started again while the budget allows; the files it had in flight fail. It
// returns true (and ExitCrashed) when the instance must exit instead.
func (l *loop) engineDown() (int, bool) {
	e := &l.eng
	eng, lost := e.cur, e.lost
	select {
	case err := <-e.hung: // a command cut short by the watcher: its verdict says why
		lost = err
	default:
		if errors.Is(lost, engine.ErrClosed) {
			// A command met a broken connection: most likely the process died and
			// its exit is on the way; then it is a crash like any other.
			select {
			case <-eng.Done():
				lost = nil
			case <-time.After(closedGrace):
			}
		}
	}
	var stalled *stallError
	if errors.As(lost, &stalled) {
		l.log.Error().Err(lost).Int("engine_pid", eng.PID()).Msg("engine pipeline stalled; killing it")
		eng.Kill()
	} else if lost != nil {
		l.log.Error().Err(lost).Int("engine_pid", eng.PID()).Msg("engine failed to answer; killing it")
		eng.Kill()
	}
	e.watch()
	select {
	case <-eng.Done():
	case <-time.After(engine.KillWait):
		l.log.Error().Int("engine_pid", eng.PID()).Msg("engine not reaped after SIGKILL")
	}
	// Hold the slots first: the events the engine sent before it died are still
	// queued and end files, which must not start the next ones on a dead engine.
	l.store.Apply(store.Hold())
	e.cur = nil
	l.checks.cancelAll()
	l.drain(e.events)
	e.events, e.done, e.hung, e.progress = nil, nil, nil, nil
	st := engine.ExitStatus{Code: -1, Signal: "SIGKILL"}
	select {
	case <-eng.Done():
		st = eng.ExitStatus()
	default:
	}
	now := time.Now()
	report := l.crashReport(st, lost)
	if !l.restartAllowed(now) {
		report.RestartCount = len(e.restarts)
		return l.fatalCrash(report), true
	}
	e.restarts = append(e.restarts, now)
	report.Restarting = true
	report.RestartCount = len(e.restarts)
	report.RestartsLeft = l.o.Restarts - len(e.restarts)
	l.send(report)
	reason := "engine crashed while playing this file: " + st.String()
	if stalled != nil {
		reason = "the engine's pipeline stalled while playing this file (engine restarted): " + stalled.why
	} else if lost != nil {
		reason = "engine stopped answering while playing this file (killed): " + lost.Error()
	}
	l.apply(l.prom.failures(promexport.ErrEngine, l.store.Apply(store.Lost(reason))))
	e.downSince = now
	delay := l.backoff()
	l.log.Warn().Int("restart_count", report.RestartCount).Int("restarts_left", report.RestartsLeft).
		Dur("delay", delay).Msg("restarting the engine")
	e.restartTimer.Reset(delay)
	return 0, false
}

// restartAllowed drops restarts older than the window and says whether the budget
// has one left.
func (l *loop) restartAllowed(now time.Time) bool {
	e := &l.eng
	for len(e.restarts) > 0 && now.Sub(e.restarts[0]) > l.o.RestartWindow {
		e.restarts = e.restarts[1:]
	}
	return l.d.Restart != nil && l.o.Restarts > 0 && len(e.restarts) < l.o.Restarts
}

// backoff is the delay before the next restart: BackoffMin, doubled for each restart
// already in the window before this one, at most BackoffMax.
func (l *loop) backoff() time.Duration {
	return backoff.Ceiling(l.o.BackoffMin, l.o.BackoffMax, max(len(l.eng.restarts)-1, 0))
}

// startEngine starts a new engine off the loop; started takes the result.
func (l *loop) startEngine() {
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan startResult, 1)
	l.eng.starting, l.eng.cancelStart = ch, cancel
	go func() {
		eng, err := l.d.Restart(ctx)
		ch <- startResult{eng, err}
	}()
}

// started attaches a restarted engine and lets the slots play again. A failed start
// counts against the budget like a crash.
func (l *loop) started(r startResult) (int, bool) {
	e := &l.eng
	e.starting = nil
	e.cancelStart()
	if r.err == nil && r.eng.Hello().Streams != l.state.Streams() {
		r.err = fmt.Errorf("the restarted engine has %d streams, not %d", r.eng.Hello().Streams, l.state.Streams())
		r.eng.Kill()
	}
	if r.err != nil {
		l.log.Error().Err(r.err).Msg("engine restart failed")
		now := time.Now()
		if !l.restartAllowed(now) {
			report := l.crashReport(engine.ExitStatus{Code: -1}, nil)
			report.ExitCode, report.Signal = nil, nil
			report.Reason = "engine did not start again: " + r.err.Error()
			report.RestartCount = len(e.restarts)
			return l.fatalCrash(report), true
		}
		e.restarts = append(e.restarts, now)
		e.restartTimer.Reset(l.backoff())
		return 0, false
	}
	l.attach(r.eng)
	if err := l.d.Dir.WritePID("engine", r.eng.PID()); err != nil {
		l.log.Warn().Err(err).Msg("engine pid file not written")
	}
	ready := time.Since(e.downSince)
	l.log.Info().Int("engine_pid", r.eng.PID()).Dur("after", ready).Msg("engine ready again")
	l.send(protocol.EngineRestarted{
		InstanceID:   l.o.AppID,
		Timestamp:    protocol.Timestamp(time.Now()),
		EnginePID:    r.eng.PID(),
		RestartCount: len(e.restarts),
		RestartsLeft: l.o.Restarts - len(e.restarts),
		ReadyMS:      ready.Milliseconds(),
	})
	l.apply(l.store.Apply(store.Back()))
	l.store.Changed()
	return 0, false
}

// fatalCrash sends the report of a crash the instance does not survive and returns
// ExitCrashed, so that FastAPI restarts the whole instance.
func (l *loop) fatalCrash(report protocol.EngineCrashed) int {
	l.log.Error().Int("cameras_in_flight", len(report.CamerasInFlight)).Int("restarts", report.RestartCount).
		Msg("engine lost; no restart left, exiting")
	l.send(report)
	l.flushLink(crashGrace, "crash report")
	l.flushState()
	return ExitCrashed
}

// stopEngine stops the engine for good: gracefully when it answers, at once when it
// is known not to, and a restart under way is called off.
func (l *loop) stopEngine() {
	e := &l.eng
	l.eng.restartTimer.Stop()
	if e.starting != nil {
		e.cancelStart()
		select {
		case r := <-e.starting:
			if r.err == nil {
				l.attach(r.eng)
			}
		case <-time.After(engine.KillWait):
			l.log.Error().Msg("engine start did not end after cancel")
		}
		e.starting = nil
	}
	if e.cur == nil {
		return
	}
	e.watch()
	if e.lost != nil {
		e.cur.Kill()
		select {
		case <-e.cur.Done():
		case <-time.After(engine.KillWait):
			l.log.Error().Int("engine_pid", e.cur.PID()).Msg("engine not reaped after SIGKILL")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), l.o.StopTimeout)
	defer cancel()
	if err := e.cur.Shutdown(ctx); err != nil {
		l.log.Warn().Err(err).Msg("engine shutdown")
	}
}

// drain applies the events still queued from a dead engine, for at most a second.
func (l *loop) drain(events <-chan engine.Event) {
	timeout := time.After(time.Second)
	for events != nil {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			l.handleEvent(ev)
		case <-timeout:
			return
		}
	}
}

// resumePlay reports the files the previous process had in the engine, as an engine
// loss, and plays on with this process's engine.
func (l *loop) resumePlay() {
	l.apply(l.prom.failures(promexport.ErrEngine, l.store.Apply(store.Lost(store.PrevDied))))
	l.apply(l.store.Apply(store.Back()))
}
