package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

const parentEnv = "ENGINE_TEST_PARENT"

// noExitSleep spares helper processes built with -race the detector's 1 s sleep at exit.
const noExitSleep = "GORACE=atexit_sleep_ms=0"

func TestMain(m *testing.M) {
	switch {
	case os.Getenv(fakeEnv) != "":
		runFake()
	case os.Getenv(parentEnv) != "":
		runParent()
	default:
		os.Exit(m.Run())
	}
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// shortDir returns a fresh directory with a short path (socket paths are limited).
func shortDir(t testing.TB) string {
	dir, err := os.MkdirTemp("", "eng")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func fakeConfig(t testing.TB, mode string, env ...string) (Config, *syncBuffer) {
	out := &syncBuffer{}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine output:\n%s\nsupervisor log:\n%s", out, logs)
		}
	})
	return Config{
		Binary:       os.Args[0],
		ConfigPath:   "/abs/cfg.txt",
		SocketPath:   filepath.Join(shortDir(t), "e.sock"),
		Output:       out,
		Env:          append([]string{fakeEnv + "=1", "FAKE_MODE=" + mode, noExitSleep}, env...),
		StartTimeout: 10 * time.Second,
		TermGrace:    300 * time.Millisecond,
		Log:          zerolog.New(logs).Level(zerolog.DebugLevel),
	}, out
}

// startFake starts a fake engine; cleanup shuts it down and drains its events.
func startFake(t *testing.T, mode string, env ...string) (*Engine, *syncBuffer) {
	t.Helper()
	cfg, out := fakeConfig(t, mode, env...)
	e, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		drain(e.Events())
	})
	return e, out
}

func drain(ch <-chan Event) []Event {
	var evs []Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		case <-timeout:
			panic("events channel never closed")
		}
	}
}

func nextEvent(t *testing.T, e *Engine) Event {
	t.Helper()
	select {
	case ev, ok := <-e.Events():
		if !ok {
			t.Fatal("events closed")
		}
		return ev
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5s")
	}
	return Event{}
}

func ctx5(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitDone(t *testing.T, e *Engine) ExitStatus {
	t.Helper()
	select {
	case <-e.Done():
		return e.ExitStatus()
	case <-time.After(5 * time.Second):
		t.Fatal("engine did not exit")
	}
	return ExitStatus{}
}

func TestProtocolRoundTrip(t *testing.T) {
	e, out := startFake(t, "normal")
	ctx := ctx5(t)
	h := e.Hello()
	if !h.Ready || h.Engine != "fake" || h.Version != "0.1" || h.Protocol != 1 || h.Streams != 2 ||
		h.ConfigPath != "/abs/cfg.txt" || fmt.Sprint(h.GPUIDs) != "[0 1]" {
		t.Fatalf("hello = %+v", h)
	}
	if !strings.Contains(out.String(), "fake engine starting: -c /abs/cfg.txt") {
		t.Fatalf("engine output not captured: %q", out.String())
	}
	if pgid, err := unix.Getpgid(e.PID()); err != nil || pgid != e.PID() {
		t.Fatalf("engine pgid %d (%v), want its own group %d", pgid, err, e.PID())
	}

	// A file that plays through: started, then done, in order.
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 11, URI: "file:///done", NewCamera: true}); err != nil {
		t.Fatal(err)
	}
	started, done := nextEvent(t, e), nextEvent(t, e)
	if started.Kind != "file_started" || started.Slot != 0 || started.FileID != 11 || started.MonoNS != 100 {
		t.Fatalf("first event %+v", started)
	}
	if done.Kind != "file_done" || done.FileID != 11 || done.Frames != 60 || done.CameraFrames != 60 ||
		done.MonoNS != 200 || done.Seq != started.Seq+1 {
		t.Fatalf("second event %+v (first seq %d)", done, started.Seq)
	}

	// The engine refuses: the message comes back as a RequestError.
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 12, URI: "file:///hold"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_started" || ev.FileID != 12 {
		t.Fatalf("event %+v", ev)
	}
	for _, tc := range []struct {
		req  PlayRequest
		want string
	}{
		{PlayRequest{Slot: 0, FileID: 13, URI: "file:///done"}, "slot 0 busy"},
		{PlayRequest{Slot: 5, FileID: 13, URI: "file:///done"}, "slot 5 out of range (0..1)"},
		{PlayRequest{Slot: 1, FileID: 13}, `field "uri": expected non-empty string`},
	} {
		err := e.Play(ctx, tc.req)
		var re *RequestError
		if !errors.As(err, &re) || re.Op != "play" || re.Message != tc.want {
			t.Fatalf("Play(%+v) = %v, want refusal %q", tc.req, err, tc.want)
		}
	}
	if err := e.Reset(ctx, 0); err == nil || !strings.Contains(err.Error(), "slot 0 busy") {
		t.Fatalf("Reset of a busy slot: %v", err)
	}

	prog, err := e.Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(prog) != 2 || prog[0].State != "playing" || prog[0].FileID == nil || *prog[0].FileID != 12 ||
		*prog[0].PositionNS != 1000 || *prog[0].DurationNS != 2e9 || prog[0].Frames != 5 ||
		prog[1].State != "idle" || prog[1].FileID != nil || prog[1].PositionNS != nil || prog[1].Slot != 1 {
		t.Fatalf("progress = %+v", prog)
	}

	st, err := e.Stop(ctx, 0)
	if err != nil || !st.WasPlaying || st.FileID != 12 || st.Frames != 10 {
		t.Fatalf("Stop = %+v, %v", st, err)
	}
	if st, err := e.Stop(ctx, 0); err != nil || st.WasPlaying {
		t.Fatalf("Stop of an idle slot = %+v, %v", st, err)
	}

	// The file ends just as it is stopped: its events, read before the stop reply, are
	// left out; the next file's come through.
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 14, URI: "file:///racy"}); err != nil {
		t.Fatal(err)
	}
	st, err = e.Stop(ctx, 1)
	if err != nil || st.WasPlaying {
		t.Fatalf("racy Stop = %+v, %v", st, err)
	}
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 15, URI: "file:///done"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_started" || ev.FileID != 15 || ev.Seq <= st.Seq {
		t.Fatalf("event %+v after the stop (reply seq %d)", ev, st.Seq)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_done" || ev.FileID != 15 {
		t.Fatalf("event %+v", ev)
	}

	if err := e.Reset(ctx, 1); err != nil {
		t.Fatal(err)
	}
	// An id-less refusal goes to the oldest pending request.
	var re *RequestError
	if err := e.Reset(ctx, 7); !errors.As(err, &re) || re.Message != "malformed JSON: simulated" {
		t.Fatalf("Reset(7) = %v", err)
	}

	// Many callers at once each get their own reply.
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			if i%2 == 0 {
				p, err := e.Progress(ctx)
				if err == nil && len(p) != 2 {
					err = fmt.Errorf("progress has %d slots", len(p))
				}
				errs <- err
				return
			}
			st, err := e.Stop(ctx, 1)
			if err == nil && st.WasPlaying {
				err = errors.New("slot 1 playing")
			}
			errs <- err
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}

	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if st := waitDone(t, e); st.Code != 0 || st.Signal != "" || st.Err != nil || st.String() != "exit code 0" {
		t.Fatalf("exit status %+v", st)
	}
	if evs := drain(e.Events()); len(evs) != 0 {
		t.Fatalf("unexpected events %+v", evs)
	}
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 1, URI: "file:///done"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Play after shutdown: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestLiveStreamEvents(t *testing.T) {
	e, _ := startFake(t, "normal")
	ctx := ctx5(t)
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 21, URI: "rtsp://cam/outage", NewCamera: true}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_started" || ev.FileID != 21 || ev.Lost != nil || ev.Resumed != nil {
		t.Fatalf("first event %+v", ev)
	}
	lost := nextEvent(t, e)
	if lost.Kind != "stream_lost" || lost.Slot != 0 || lost.FileID != 21 || lost.Lost == nil ||
		*lost.Lost != (StreamLost{Reason: "end of stream", WillRetry: true, Attempt: 1, RetryInMS: 1000}) {
		t.Fatalf("stream_lost event %+v (%+v)", lost, lost.Lost)
	}
	res := nextEvent(t, e)
	if res.Kind != "stream_resumed" || res.FileID != 21 || res.Resumed == nil ||
		*res.Resumed != (StreamResumed{DownMS: 1234, Attempts: 1, TrackerKept: true}) || res.Seq != lost.Seq+1 {
		t.Fatalf("stream_resumed event %+v (%+v)", res, res.Resumed)
	}

	prog, err := e.Progress(ctx)
	if err != nil {
		t.Fatal(err)
	}
	age := int64(1500)
	if l := prog[0].Live; l == nil || l.State != "reconnecting" || l.FPS != 29.5 || l.LastFrameAgeMS == nil ||
		*l.LastFrameAgeMS != age || l.Reconnects != 2 || prog[0].DurationNS != nil {
		t.Fatalf("live progress %+v (%+v)", prog[0], prog[0].Live)
	}
	if prog[1].Live != nil {
		t.Fatalf("idle slot has live progress %+v", prog[1].Live)
	}

	// A stream_lost read before the stop reply of its slot is stale: never delivered.
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 22, URI: "rtsp://cam/down"}); err != nil {
		t.Fatal(err)
	}
	st, err := e.Stop(ctx, 1)
	if err != nil || !st.WasPlaying || st.FileID != 22 {
		t.Fatalf("Stop = %+v, %v", st, err)
	}
	if err := e.Play(ctx, PlayRequest{Slot: 1, FileID: 23, URI: "file:///done"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_started" || ev.FileID != 23 {
		t.Fatalf("event %+v after the stop of a reconnecting slot (reply seq %d)", ev, st.Seq)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_done" || ev.FileID != 23 {
		t.Fatalf("event %+v", ev)
	}
}

func TestMalformedLinesAreSkipped(t *testing.T) {
	e, _ := startFake(t, "normal")
	ctx := ctx5(t)
	st, err := e.Stop(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 21, URI: "file:///garbage"}); err != nil {
		t.Fatalf("Play after junk: %v", err)
	}
	ev := nextEvent(t, e)
	// Seq counts every line: the junk, the play reply, then this event.
	if ev.Kind != "file_error" || ev.FileID != 21 || ev.Error != "Could not determine type" ||
		ev.Seq != st.Seq+uint64(len(fakeJunk))+2 {
		t.Fatalf("event %+v, stop seq %d, %d junk lines", ev, st.Seq, len(fakeJunk))
	}
	if _, err := e.Progress(ctx); err != nil {
		t.Fatalf("Progress after junk: %v", err)
	}
}

func TestMalformedReplyPayload(t *testing.T) {
	e, _ := startFake(t, "badprogress")
	ctx := ctx5(t)
	if _, err := e.Progress(ctx); err == nil || !strings.Contains(err.Error(), "malformed reply") {
		t.Fatalf("Progress with a bad payload: %v", err)
	}
	if _, err := e.Stop(ctx, 0); err != nil {
		t.Fatalf("the connection must survive a bad payload: %v", err)
	}
}

func TestRepliesMatchedByIDAfterTimeout(t *testing.T) {
	e, _ := startFake(t, "normal")
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.Play(short, PlayRequest{Slot: 0, FileID: 31, URI: "file:///slowreply"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Play with a short deadline: %v", err)
	}
	// The late reply to the abandoned Play must not be taken for this one.
	p, err := e.Progress(ctx5(t))
	if err != nil || len(p) != 2 {
		t.Fatalf("Progress = %+v, %v", p, err)
	}
	if ev := nextEvent(t, e); ev.Error != "late" {
		t.Fatalf("event %+v", ev)
	}
	canceled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := e.Reset(canceled, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Reset with a canceled context: %v", err)
	}
}

func TestEventsNeverBlockTheReader(t *testing.T) {
	e, _ := startFake(t, "normal")
	ctx := ctx5(t)
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 1, URI: "file:///flood"}); err != nil {
		t.Fatal(err)
	}
	// Nobody reads events yet; replies still flow.
	if _, err := e.Progress(ctx); err != nil {
		t.Fatalf("Progress while 10000 events wait: %v", err)
	}
	var last uint64
	for i := 0; i < 10000; i++ {
		ev := nextEvent(t, e)
		if ev.FileID != int64(i) || ev.Seq <= last {
			t.Fatalf("event %d: %+v after seq %d", i, ev, last)
		}
		last = ev.Seq
	}
}

func TestEngineCrash(t *testing.T) {
	e, _ := startFake(t, "normal")
	ctx := ctx5(t)
	if err := e.Play(ctx, PlayRequest{Slot: 0, FileID: 41, URI: "file:///hold"}); err != nil {
		t.Fatal(err)
	}
	if ev := nextEvent(t, e); ev.Kind != "file_started" {
		t.Fatalf("event %+v", ev)
	}
	if err := syscall.Kill(e.PID(), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st := waitDone(t, e)
	if st.Code != -1 || st.Signal != "SIGKILL" || st.Err == nil || st.String() != "signal SIGKILL" {
		t.Fatalf("exit status %+v (%s)", st, st)
	}
	if evs := drain(e.Events()); len(evs) != 0 {
		t.Fatalf("events %+v", evs)
	}
	if _, err := e.Progress(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Progress after crash: %v", err)
	}
	if err := e.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown after crash: %v", err)
	}
}

func TestFatalEvent(t *testing.T) {
	e, _ := startFake(t, "normal")
	if err := e.Play(ctx5(t), PlayRequest{Slot: 1, FileID: 51, URI: "file:///fatal"}); err != nil {
		t.Fatal(err)
	}
	st := waitDone(t, e)
	evs := drain(e.Events())
	if len(evs) != 1 || evs[0].Kind != "fatal" || evs[0].Error != "pipeline broke" || evs[0].Slot != -1 {
		t.Fatalf("events %+v", evs)
	}
	if st.Code != 1 || st.Signal != "" || st.String() != "exit code 1" {
		t.Fatalf("exit status %+v", st)
	}
}

func TestShutdownEscalation(t *testing.T) {
	for _, tc := range []struct {
		mode    string
		wantErr string
		signal  string
		code    int
	}{
		{"stubborn", "ignored shutdown and SIGTERM, killed: signal SIGKILL", "SIGKILL", -1},
		{"termok", "", "", 0},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			e, _ := startFake(t, tc.mode)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := e.Shutdown(ctx)
			took := time.Since(start)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Shutdown = %v, want %q", err, tc.wantErr)
			}
			select {
			case <-e.Done():
			default:
				t.Fatal("Shutdown returned with the process alive")
			}
			if st := e.ExitStatus(); st.Signal != tc.signal || st.Code != tc.code {
				t.Fatalf("exit status %+v", st)
			}
			min := 200 * time.Millisecond
			if tc.mode == "stubborn" {
				min += 300 * time.Millisecond // TermGrace
			}
			if took < min || took > min+3*time.Second {
				t.Fatalf("Shutdown took %v, want about %v", took, min)
			}
		})
	}
}

func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name, mode string
		env        []string
		timeout    time.Duration
		want       []string
	}{
		{"exits", "exit3", nil, 5 * time.Second, []string{"engine exited before opening its socket (exit code 3)"}},
		{"no socket", "nosocket", nil, 300 * time.Millisecond, []string{"connect", "deadline exceeded"}},
		{"never ready", "noready", nil, 2 * time.Second, []string{"waiting for ready", "deadline exceeded"}},
		{"protocol", "normal", []string{"FAKE_PROTOCOL=2"}, 5 * time.Second, []string{"protocol 2, want 1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, out := fakeConfig(t, tc.mode, tc.env...)
			// The pid comes from Start's own "engine spawned" line: under load a
			// short timeout can kill the engine before it could report anything.
			spawnLog := &syncBuffer{}
			cfg.Log = zerolog.New(spawnLog)
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("Start's log:\n%s", spawnLog)
				}
			})
			cfg.StartTimeout = tc.timeout
			start := time.Now()
			e, err := Start(context.Background(), cfg)
			if err == nil {
				e.Shutdown(context.Background())
				t.Fatal("Start succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q lacks %q", err, w)
				}
			}
			if took := time.Since(start); took > tc.timeout+3*time.Second {
				t.Fatalf("Start took %v", took)
			}
			if tc.mode == "exit3" && !strings.Contains(out.String(), "bad config") {
				t.Fatalf("stderr not captured: %q", out.String())
			}
			var spawned struct {
				PID int `json:"pid"`
			}
			line, _, _ := strings.Cut(spawnLog.String(), "\n")
			if err := json.Unmarshal([]byte(line), &spawned); err != nil || spawned.PID <= 0 {
				t.Fatalf("no pid in Start's first log line %q", line)
			}
			pid := spawned.PID
			// Reaped by Start: the pid no longer exists (not even as a zombie).
			if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
				t.Fatalf("engine pid %d left behind: kill(0) = %v", pid, err)
			}
		})
	}
	t.Run("late ready", func(t *testing.T) {
		e, _ := startFake(t, "lateready")
		if !e.Hello().Ready {
			t.Fatal("Hello().Ready false after Start")
		}
	})
	t.Run("bad binary", func(t *testing.T) {
		cfg, _ := fakeConfig(t, "normal")
		cfg.Binary = "/nonexistent/engine"
		if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "no such file") {
			t.Fatalf("Start = %v", err)
		}
		cfg.SocketPath = ""
		if _, err := Start(context.Background(), cfg); err == nil {
			t.Fatal("Start without a socket path succeeded")
		}
	})
	t.Run("stale socket", func(t *testing.T) {
		cfg, _ := fakeConfig(t, "normal")
		if err := os.WriteFile(cfg.SocketPath, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		e, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		drain(e.Events())
	})
}

// runParent is a supervisor stand-in: it starts a fake engine, reports its pid, ends a
// batch of locked OS threads (none of which may be the thread that forked the engine)
// and waits to be killed.
func runParent() {
	cfg := Config{Binary: os.Args[0], ConfigPath: "/abs/cfg.txt", SocketPath: os.Getenv("PARENT_SOCKET"),
		Env: []string{fakeEnv + "=1", "FAKE_MODE=normal", noExitSleep}, StartTimeout: 10 * time.Second, Log: zerolog.Nop()}
	e, err := Start(context.Background(), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(e.PID())
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // returning locked ends the thread
			time.Sleep(time.Millisecond)
		}()
	}
	wg.Wait()
	fmt.Println("churned")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

func TestEngineDiesWithParent(t *testing.T) {
	parent := exec.Command(os.Args[0], "-test.run=^$")
	parent.Env = append(os.Environ(), noExitSleep, parentEnv+"=1", "PARENT_SOCKET="+filepath.Join(shortDir(t), "e.sock"))
	stdin, _ := parent.StdinPipe()
	stdout, _ := parent.StdoutPipe()
	var stderr syncBuffer
	parent.Stderr = &stderr
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { parent.Process.Kill(); stdin.Close(); parent.Wait() }()
	r := bufio.NewReader(stdout)
	line, err := r.ReadString('\n')
	pid, perr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || perr != nil {
		t.Fatalf("parent said %q (%v); stderr %s", line, err, stderr.String())
	}
	defer syscall.Kill(pid, syscall.SIGKILL) // in case the test fails
	if line, _ := r.ReadString('\n'); line != "churned\n" {
		t.Fatalf("parent said %q", line)
	}
	if !alive(pid) {
		t.Fatal("the engine died when unrelated OS threads of its parent ended")
	}
	if err := parent.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	parent.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("engine pid %d outlived its parent", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}
