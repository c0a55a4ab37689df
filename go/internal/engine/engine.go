// Package engine runs one C engine process (ds-gst-engine or the patched
// deepstream-app) and talks to it over its control socket (docs/engine-protocol.md):
// requests out, replies matched to their callers, events in, in order.
package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// Defaults for the zero values of Config and for contexts without a deadline.
const (
	DefaultStartTimeout = 60 * time.Second
	DefaultTermGrace    = 2 * time.Second
	DefaultStopTimeout  = 5 * time.Second
)

const (
	protocolVersion = 1
	dialInterval    = 10 * time.Millisecond
	// writeTimeout bounds a request write when the caller's context has no deadline.
	writeTimeout = 5 * time.Second
	// drainTimeout lets the reader take the lines still buffered in the socket after the
	// process exited (a `fatal` just before exit 1), in case a stray descendant keeps
	// the peer end open.
	drainTimeout = time.Second
	// outputWaitDelay bounds how long Done waits for the output copy after the exit
	// when Output is not a file and a descendant still holds the pipe.
	outputWaitDelay = time.Second
)

// KillWait bounds the wait for an engine process to vanish after SIGKILL (Shutdown's
// last step; the supervisor's wait after Kill).
const KillWait = 5 * time.Second

// ErrClosed is wrapped by request errors once the connection to the engine is gone.
var ErrClosed = errors.New("engine connection closed")

// Config says how to run the engine.
type Config struct {
	// Binary is the engine executable; it is run as `Binary -c ConfigPath`.
	Binary     string
	ConfigPath string
	// Args follow `-c ConfigPath` (deepstream-app options the supervisor passes on).
	Args []string
	// SocketPath is passed in DS_CONTROL_SOCKET; a stale file there is removed first.
	SocketPath string
	// Output receives the engine's stdout and stderr; nil discards them. Give a file
	// or a writer, not a terminal: the engine runs in its own process group, which a
	// terminal with `stty tostop` would stop on its first write.
	Output io.Writer
	// Env is added to the supervisor's environment for the engine (later entries win).
	Env []string
	// WorkDir is the engine's working directory; empty keeps the supervisor's. Relative
	// Binary, ConfigPath and SocketPath are made absolute first, so they keep meaning
	// what they mean to the supervisor.
	WorkDir string
	// StartTimeout bounds Start from spawn to `ready` (DefaultStartTimeout when 0); a
	// DeepStream engine may build TensorRT engines before it is ready.
	StartTimeout time.Duration
	// TermGrace is how long Shutdown waits after SIGTERM before SIGKILL
	// (DefaultTermGrace when 0).
	TermGrace time.Duration
	// Log receives the client's lifecycle messages and complaints about bad lines.
	Log zerolog.Logger
}

// Hello is the engine's answer to `hello`.
type Hello struct {
	Ready      bool
	Engine     string // "gst" or "deepstream"
	Version    string
	Protocol   int
	Streams    int // number of slots, 0..Streams-1
	ConfigPath string
	GPUIDs     []int
}

// ExitStatus tells how the engine process ended.
type ExitStatus struct {
	// Code is the exit code, -1 when the process was killed by a signal.
	Code int
	// Signal names the killing signal ("SIGKILL"), "" when the process exited.
	Signal string
	// Err is what waiting for the process returned: nil for exit code 0, an
	// *exec.ExitError otherwise, or an I/O error from copying its output.
	Err error
}

// String describes the status for logs and crash reports: "exit code 3",
// "signal SIGSEGV".
func (s ExitStatus) String() string {
	var out string
	if s.Signal != "" {
		out = "signal " + s.Signal
	} else {
		out = fmt.Sprintf("exit code %d", s.Code)
	}
	var ee *exec.ExitError
	if s.Err != nil && !errors.As(s.Err, &ee) {
		out += " (" + s.Err.Error() + ")"
	}
	return out
}

// Engine is a running engine process and the client of its control socket.
type Engine struct {
	cfg   Config
	log   zerolog.Logger
	cmd   *exec.Cmd
	hello Hello

	done chan struct{} // closed once the process has been reaped
	exit ExitStatus    // written before done is closed

	client
}

// Start runs the engine, connects to its socket, says `hello` and waits for the `ready`
// event. ctx bounds the start only, not the life of the process; use Shutdown to stop
// it. On any failure the process is killed and reaped before Start returns, and an
// early exit is reported with its status.
//
// The process gets stdin from /dev/null, its own process group and SIGKILL as parent
// death signal. Its own group keeps a terminal's Ctrl-C (SIGINT to the foreground group)
// from reaching the engine behind the supervisor's back: the supervisor alone decides
// when and how the engine stops, so such a stop is never mistaken for a crash. The cost
// is that a kill of the supervisor's group does not reach the engine directly; the
// parent death signal covers that, and it also covers the supervisor being killed.
func Start(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Binary == "" || cfg.SocketPath == "" || cfg.ConfigPath == "" {
		return nil, errors.New("start engine: Binary, ConfigPath and SocketPath are required")
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.TermGrace <= 0 {
		cfg.TermGrace = DefaultTermGrace
	}
	if err := os.Remove(cfg.SocketPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("start engine: remove stale socket: %w", err)
	}

	if cfg.WorkDir != "" {
		// exec reports a missing Dir as the binary missing: say what is wrong.
		if st, err := os.Stat(cfg.WorkDir); err != nil {
			return nil, fmt.Errorf("start engine: work dir: %w", err)
		} else if !st.IsDir() {
			return nil, fmt.Errorf("start engine: work dir %s: not a directory", cfg.WorkDir)
		}
		paths := []*string{&cfg.ConfigPath, &cfg.SocketPath}
		if strings.Contains(cfg.Binary, "/") { // a bare name is looked up in PATH
			paths = append(paths, &cfg.Binary)
		}
		if err := absPaths(paths...); err != nil {
			return nil, fmt.Errorf("start engine: %w", err)
		}
	}

	cmd := exec.Command(cfg.Binary, append([]string{"-c", cfg.ConfigPath}, cfg.Args...)...)
	cmd.Dir = cfg.WorkDir
	cmd.Env = append(append(os.Environ(), cfg.Env...), "DS_CONTROL_SOCKET="+cfg.SocketPath)
	cmd.Stdout, cmd.Stderr = cfg.Output, cfg.Output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = outputWaitDelay

	e := &Engine{cfg: cfg, log: cfg.Log.With().Str("component", "engine").Logger(), cmd: cmd, done: make(chan struct{})}
	e.client.init(e.log)
	if err := spawn(cmd, e.reaped); err != nil {
		return nil, fmt.Errorf("start engine %s: %w", cfg.Binary, err)
	}
	e.log.Info().Int("pid", e.PID()).Str("binary", cfg.Binary).Str("config", cfg.ConfigPath).
		Str("workdir", cfg.WorkDir).Msg("engine spawned")

	sctx, cancel := context.WithTimeout(ctx, cfg.StartTimeout)
	defer cancel()
	if err := e.handshake(sctx); err != nil {
		e.abort()
		return nil, fmt.Errorf("start engine %s (pid %d): %w", cfg.Binary, e.PID(), err)
	}
	e.log.Info().Int("pid", e.PID()).Str("engine", e.hello.Engine).Str("version", e.hello.Version).
		Int("streams", e.hello.Streams).Ints("gpu_ids", e.hello.GPUIDs).Msg("engine ready")
	return e, nil
}

// absPaths makes relative paths absolute against the supervisor's working directory.
func absPaths(paths ...*string) error {
	for _, p := range paths {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	return nil
}

// reaped runs on the spawning goroutine once the process has been waited for.
func (e *Engine) reaped(st ExitStatus) {
	ev := e.log.Info()
	if st.Code != 0 {
		ev = e.log.Warn()
	}
	ev.Int("pid", e.PID()).Str("status", st.String()).Msg("engine exited")
	e.exit = st
	e.client.peerGone(drainTimeout)
	close(e.done)
}

// handshake connects, says hello and waits for ready.
func (e *Engine) handshake(ctx context.Context) error {
	conn, err := e.dial(ctx)
	if err != nil {
		return err
	}
	e.client.attach(conn)
	res, err := e.call(ctx, request{Op: opHello})
	if err != nil {
		return e.startError(ctx, "hello", err)
	}
	var h helloReply
	if err := res.decode(&h); err != nil {
		return fmt.Errorf("hello: %w", err)
	}
	e.hello = Hello{Ready: h.Ready, Engine: h.Engine, Version: h.Version, Protocol: h.Protocol,
		Streams: h.Streams, ConfigPath: h.ConfigPath, GPUIDs: h.GPUIDs}
	if h.Protocol != protocolVersion {
		return fmt.Errorf("hello: engine speaks protocol %d, want %d", h.Protocol, protocolVersion)
	}
	select {
	case <-e.client.ready:
		e.hello.Ready = true
		return nil
	case <-e.client.readerDone:
		return e.startError(ctx, "waiting for ready", e.client.closedErr())
	case <-ctx.Done():
		return fmt.Errorf("waiting for ready: %w", ctx.Err())
	}
}

// startError adds the exit status when the process ended during the handshake.
func (e *Engine) startError(ctx context.Context, step string, err error) error {
	select {
	case <-e.done:
	case <-ctx.Done():
	case <-time.After(drainTimeout): // the connection broke but the process lives on
	}
	select {
	case <-e.done:
		return fmt.Errorf("%s: engine exited (%s): %w", step, e.exit, err)
	default:
		return fmt.Errorf("%s: %w", step, err)
	}
}

// dial polls for the socket until it accepts, the process exits or ctx ends.
func (e *Engine) dial(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "unix", e.cfg.SocketPath)
		if err == nil {
			return conn, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("engine exited before opening its socket (%s)", e.exit)
		case <-ctx.Done():
			return nil, fmt.Errorf("connect %s: %w (last error: %v)", e.cfg.SocketPath, ctx.Err(), err)
		case <-time.After(dialInterval):
		}
	}
}

// abort kills a process whose start failed and waits for it.
func (e *Engine) abort() {
	e.client.abandon()
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-e.done:
	case <-time.After(KillWait):
		e.log.Error().Int("pid", e.PID()).Msg("engine did not exit after SIGKILL")
	}
}

// Hello returns the engine's hello reply (Ready is true once Start has returned).
func (e *Engine) Hello() Hello {
	h := e.hello
	h.GPUIDs = append([]int(nil), h.GPUIDs...)
	return h
}

// Config returns the configuration the engine was started with (defaults filled
// in), to start another one like it.
func (e *Engine) Config() Config { return e.cfg }

// PID returns the engine's process id.
func (e *Engine) PID() int { return e.cmd.Process.Pid }

// Events delivers the engine's events (EventFileStarted … EventFatal) in the order
// received. They queue without bound until read; the only ones left out are those of a
// stopped file: a slot's events read before its stop reply.
// The channel is closed after the connection ends (the engine exited, or closed the
// connection, which leaves the engine useless) and every queued event was delivered;
// read it until then.
func (e *Engine) Events() <-chan Event { return e.client.events.out }

// Done is closed when the engine process has exited and been reaped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// ExitStatus tells how the process ended. It waits for Done.
func (e *Engine) ExitStatus() ExitStatus {
	<-e.done
	return e.exit
}

// Shutdown stops the engine and returns once the process is gone. It sends `shutdown`
// and waits for the exit until ctx ends (DefaultStopTimeout when ctx has no deadline),
// then sends SIGTERM and waits TermGrace, then SIGKILL. It returns nil when the engine
// exited with code 0 (or had already exited before the call: see ExitStatus), and an
// error saying how it ended otherwise. Safe to call more than once and concurrently.
func (e *Engine) Shutdown(ctx context.Context) error {
	select {
	case <-e.done:
		return nil
	default:
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultStopTimeout)
		defer cancel()
	}
	if _, err := e.call(ctx, request{Op: opShutdown}); err != nil {
		e.log.Warn().Err(err).Msg("shutdown request failed; waiting for the exit anyway")
	}
	select {
	case <-e.done:
		return e.exitError("after shutdown")
	case <-ctx.Done():
	}
	e.log.Warn().Int("pid", e.PID()).Msg("engine still running after shutdown; sending SIGTERM")
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		return e.exitError("after SIGTERM")
	case <-time.After(e.cfg.TermGrace):
	}
	e.log.Error().Int("pid", e.PID()).Dur("grace", e.cfg.TermGrace).Msg("engine ignored SIGTERM; sending SIGKILL")
	_ = e.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-e.done:
		return fmt.Errorf("engine pid %d ignored shutdown and SIGTERM, killed: %s", e.PID(), e.exit)
	case <-time.After(KillWait):
		return fmt.Errorf("engine pid %d did not exit within %v of SIGKILL", e.PID(), KillWait)
	}
}

// Kill sends SIGKILL at once, for an engine known not to answer: a graceful stop
// would only wait for a reply that cannot come. Done is closed once it is reaped.
func (e *Engine) Kill() {
	select {
	case <-e.done:
	default:
		e.log.Warn().Int("pid", e.PID()).Msg("killing the engine (SIGKILL)")
		_ = e.cmd.Process.Signal(syscall.SIGKILL)
	}
}

func (e *Engine) exitError(how string) error {
	if e.exit.Code == 0 {
		return nil
	}
	return fmt.Errorf("engine pid %d exited %s with %s", e.PID(), how, e.exit)
}
