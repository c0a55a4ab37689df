package supervisor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/engine/enginetest"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
	"github.com/cityeyelab/ds-analysis/go/internal/logs"
	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/pathcheck"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// fakeInstance is Run with in-process engines (enginetest) and the test server.
type fakeInstance struct {
	t    *testing.T
	srv  *linktest.Server
	dir  string
	idir *instance.Dir
	code chan int
	// stats is the loop's source for the Prometheus exporter.
	stats *StatsSource
	// gate, when set, holds every restart until a value is sent.
	gate  chan struct{}
	ready map[string]any // the first app_ready

	mu      sync.Mutex
	engines []*enginetest.Engine
}

type fakeOpts struct {
	streams  int
	restarts int
	fileTime time.Duration
	gate     bool
	probe    time.Duration // ProbeInterval; the default when 0
	root     string        // instance root; a new temp dir when ""
	resume   bool
	failing  bool // every restart fails
	// The frame-progress watchdog and the path checks (the defaults when 0).
	stall, stopGrace, pathTimeout time.Duration
	pathCheck                     pathcheck.Func
}

func startFake(t *testing.T, fo fakeOpts) *fakeInstance {
	t.Helper()
	dir := t.TempDir()
	root := fo.root
	if root == "" {
		root = filepath.Join(dir, "ds")
	}
	idir, err := instance.Open(root, "fake")
	if err != nil {
		t.Fatal(err)
	}
	lg, err := logs.Open(logs.Options{Root: filepath.Join(dir, "logs"), AppID: "fake", PID: os.Getpid(), Start: time.Now(), LiveLevel: zerolog.ErrorLevel})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeInstance{t: t, srv: linktest.New(t, linktest.Options{}), dir: dir, idir: idir, code: make(chan int, 1),
		stats: NewStatsSource()}
	if fo.gate {
		f.gate = make(chan struct{})
	}
	newEngine := func() *enginetest.Engine {
		e := enginetest.New(fo.streams)
		e.FileTime = fo.fileTime
		f.mu.Lock()
		f.engines = append(f.engines, e)
		f.mu.Unlock()
		return e
	}
	first := newEngine()
	restart := func(ctx context.Context) (Engine, error) {
		if fo.failing {
			return nil, errors.New("engine exited before opening its socket (exit code 1)")
		}
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return newEngine(), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	sampler := metrics.NewSampler(nil)
	go func() {
		f.code <- Run(ctx, Options{
			AppID: "fake", ConfigPath: "/c.txt", Version: "test", Start: time.Now(), StopTimeout: time.Second,
			Restarts: fo.restarts, ProbeInterval: fo.probe, Resume: fo.resume, BackoffMin: 50 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
			StallTimeout: fo.stall, StopGrace: fo.stopGrace, PathTimeout: fo.pathTimeout, PathCheck: fo.pathCheck,
			Link: link.Config{URL: f.srv.URL(), AckTimeout: 5 * time.Second, PingInterval: time.Second, PingTimeout: 2 * time.Second,
				BackoffMin: 10 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Log: lg.Logger()},
		}, Deps{Engine: first, Restart: restart, Hello: first.Hello(), Logs: lg, Log: lg.Logger(), Metrics: sampler, Dir: idir, Stats: f.stats})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-f.code:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
		sampler.Close()
		lg.Close()
		idir.Close()
	})
	f.ready = f.srv.Expect("app_ready", nil)
	return f
}

// snapshot asks the loop for the exporter's figures, as a scrape does.
func (f *fakeInstance) snapshot() promexport.Snapshot {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := f.stats.Snapshot(ctx)
	if err != nil {
		f.t.Fatalf("the loop sent no snapshot: %v", err)
	}
	return s
}

// engine returns the i-th engine started (0: the first).
func (f *fakeInstance) engine(i int) *enginetest.Engine {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		f.mu.Lock()
		n := len(f.engines)
		var e *enginetest.Engine
		if i < n {
			e = f.engines[i]
		}
		f.mu.Unlock()
		if e != nil {
			return e
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("engine %d never started (%d so far)", i, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// exit waits for Run's status.
func (f *fakeInstance) exit() int {
	f.t.Helper()
	select {
	case c := <-f.code:
		f.code <- c // for the cleanup
		return c
	case <-time.After(20 * time.Second):
		f.t.Fatal("Run did not return")
		return -1
	}
}

// playing waits until engine e plays fileID on slot.
func playing(t *testing.T, e *enginetest.Engine, slot int, fileID int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if id, ok := e.Playing(slot); ok && id == fileID {
			return
		}
		if time.Now().After(deadline) {
			id, ok := e.Playing(slot)
			t.Fatalf("slot %d never played file %d (plays %v, %v)", slot, fileID, id, ok)
		}
		time.Sleep(time.Millisecond)
	}
}

func fileset(stream int, camera int64, out string, ids ...int64) (string, string) {
	start := fmt.Sprintf(`{"type":"start_analysis","request_id":"s%d","stream_id":%d,"camera_id":%d,"camera_type":"fileset",
		"camera_path":"/v","camera_name":"c%d","output_dir":%q}`, camera, stream, camera, camera, out)
	var items []string
	for _, id := range ids {
		path := fmt.Sprintf("/v/%d.mp4", id)
		if id >= 900 {
			path = fmt.Sprintf("/v/bad/%d.mp4", id)
		}
		items = append(items, fmt.Sprintf(`{"file_type":"file","file_id":%d,"file_path":%q,"output_path":%q}`,
			id, path, filepath.Join(out, fmt.Sprint(id)+".txt")))
	}
	items = append(items, `{"file_type":"eos"}`)
	push := fmt.Sprintf(`{"type":"push_file","request_id":"p%d","stream_id":%d,"camera_id":%d,"files":[%s]}`,
		camera, stream, camera, strings.Join(items, ","))
	return start, push
}

// A whole session with the fake engine: two cameras queued on one slot, a bad file,
// an interrupt, every query, then terminate_app.
func TestFakeFlow(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, fileTime: 5 * time.Millisecond})
	out := filepath.Join(f.dir, "out")
	s1, p1 := fileset(0, 1, out, 11, 12, 901, 13)
	s2, p2 := fileset(0, 2, out, 21)
	f.srv.Send(s1)
	if m := f.srv.Expect("analysis_started", nil); m["status"] != "ok" {
		t.Fatalf("start %v", m)
	}
	f.srv.Send(s2)
	if m := f.srv.Expect("analysis_started", nil); !strings.Contains(m["message"].(string), "queued at position 1") {
		t.Fatalf("queued start %v", m)
	}
	f.srv.Send(s1) // duplicate
	if m := f.srv.Expect("analysis_started", nil); m["status"] != "error" {
		t.Fatalf("duplicate start %v", m)
	}
	f.srv.Send(p2)
	f.srv.Send(p1)
	var seen []map[string]any
	done := f.srv.Expect("analysis_complete", &seen)
	if done["camera_id"] != float64(1) || done["processed_count"] != float64(3) || done["failed_count"] != float64(1) {
		t.Fatalf("analysis_complete %v", done)
	}
	done = f.srv.Expect("analysis_complete", &seen)
	if done["camera_id"] != float64(2) || done["processed_count"] != float64(1) {
		t.Fatalf("analysis_complete %v", done)
	}
	var kinds []string
	for _, m := range seen {
		kinds = append(kinds, fmt.Sprintf("%v:%v", m["type"], m["file_id"]))
	}
	want := "processing_started:11 file_done:11 processing_started:12 file_done:12 processing_started:901 file_error:901 " +
		"processing_started:13 file_done:13 processing_started:21 file_done:21"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	e := f.engine(0)
	plays := e.Plays()
	if len(plays) != 5 || !plays[0].NewCamera || plays[1].NewCamera || !plays[4].NewCamera {
		t.Fatalf("plays %+v", plays)
	}

	// A camera that plays until interrupted, and a queued one removed.
	e.FileTime = 0
	s3, p3 := fileset(1, 3, out, 31, 32)
	s4, _ := fileset(1, 4, out, 41)
	f.srv.Send(s3)
	f.srv.Expect("analysis_started", nil)
	f.srv.Send(p3)
	playing(t, e, 1, 31)
	f.srv.Send(s4)
	f.srv.Expect("analysis_started", nil)
	f.srv.Send(`{"type":"query_analysis_status","request_id":"q1","stream_id":1}`)
	if st := f.srv.Expect("analysis_status", nil); st["stream"].(map[string]any)["status"] != "running" {
		t.Fatalf("status %v", st)
	}
	f.srv.Send(`{"type":"interrupt_analysis","request_id":"i1","stream_id":1,"camera_id":4}`)
	if m := f.srv.Expect("analysis_interrupted", nil); m["status"] != "ok" {
		t.Fatalf("interrupt queued %v", m)
	}
	f.srv.Send(`{"type":"interrupt_analysis","request_id":"i2","stream_id":1,"camera_id":3}`)
	if m := f.srv.Expect("analysis_interrupted", nil); m["status"] != "ok" {
		t.Fatalf("interrupt running %v", m)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, ok := e.Playing(1); !ok {
			break // the stop follows the reply
		}
		if time.Now().After(deadline) {
			t.Fatal("slot 1 still plays after the interrupt")
		}
	}
	f.srv.Send(`{"type":"interrupt_analysis","request_id":"i3","stream_id":1,"camera_id":3}`)
	if m := f.srv.Expect("analysis_interrupted", nil); m["status"] != "error" {
		t.Fatalf("second interrupt %v", m)
	}

	f.srv.Send(`{"type":"query_metrics","request_id":"m1"}`)
	if m := f.srv.Expect("metrics", nil); m["status"] != "ok" || m["ram_mb"].(float64) <= 0 {
		t.Fatalf("metrics %v", m)
	}
	f.srv.Send(`{"type":"query_logs","request_id":"l1","lines":5,"level":"info"}`)
	if m := f.srv.Expect("logs", nil); m["status"] != "ok" || len(m["lines"].([]any)) == 0 {
		t.Fatalf("logs %v", m)
	}
	f.srv.Send(`{"type":"execute_ack","status":"confirmed"}`)
	f.srv.Send(`not json`)
	if m := f.srv.Expect("error", nil); m["error_code"] != "BAD_JSON" {
		t.Fatalf("error %v", m)
	}
	f.srv.Send(`{"type":"terminate_app","request_id":"t1"}`)
	if m := f.srv.Expect("app_terminated", nil); m["request_id"] != "t1" {
		t.Fatalf("app_terminated %v", m)
	}
	if c := f.exit(); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	if ops := e.Ops(); ops[len(ops)-1] != "shutdown" {
		t.Fatalf("last op %v", ops)
	}
}

// An engine that stops answering a play is killed at once and reported; without a
// restart budget the instance exits (status 3) and its files are not failed one by one.
func TestFakeEngineStopsAnswering(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, probe: time.Hour})
	e := f.engine(0)
	e.Hang()
	s, p := fileset(0, 7, filepath.Join(f.dir, "out"), 1, 2)
	f.srv.Send(s)
	f.srv.Send(p)
	t0 := time.Now()
	var seen []map[string]any
	crash := f.srv.Expect("engine_crashed", &seen)
	took := time.Since(t0)
	for _, m := range seen {
		if m["type"] == "file_error" || m["type"] == "analysis_complete" {
			t.Fatalf("engine failure turned into %v", m)
		}
	}
	if r, _ := crash["reason"].(string); !strings.Contains(r, "play on slot 0") || crash["restarting"] != false {
		t.Fatalf("engine_crashed %v", crash)
	}
	if took > DefaultCallTimeout+time.Second {
		t.Errorf("report %v after the play", took)
	}
	inFlight, _ := crash["cameras_in_flight"].([]any)
	if len(inFlight) != 1 || inFlight[0].(map[string]any)["camera_id"] != float64(7) {
		t.Fatalf("cameras_in_flight %v", crash["cameras_in_flight"])
	}
	if c := f.exit(); c != ExitCrashed {
		t.Fatalf("exit %d", c)
	}
	if st := e.ExitStatus(); st.Signal != "SIGKILL" {
		t.Fatalf("engine ended with %v, want SIGKILL", st)
	}
	if n := len(e.Plays()); n != 0 {
		t.Fatalf("%d plays answered", n)
	}
}

// startTwoCameras starts camera 1 (files 1..n) on slot 0 and camera 2 (files
// 101..100+n) on slot 1 and waits until each plays its first file.
func startTwoCameras(f *fakeInstance, e *enginetest.Engine, n int) {
	out := filepath.Join(f.dir, "out")
	ids := func(base int64) []int64 {
		var v []int64
		for i := int64(1); i <= int64(n); i++ {
			v = append(v, base+i)
		}
		return v
	}
	s1, p1 := fileset(0, 1, out, ids(0)...)
	s2, p2 := fileset(1, 2, out, ids(100)...)
	for _, m := range []string{s1, p1, s2, p2} {
		f.srv.Send(m)
	}
	playing(f.t, e, 0, 1)
	playing(f.t, e, 1, 101)
}

// autoFinish plays every file on slots of e to its end as it starts, until the
// returned stop is called.
func autoFinish(e *enginetest.Engine, slots ...int) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			for _, slot := range slots {
				if id, ok := e.Playing(slot); ok {
					e.Finish(slot, id)
				}
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	return func() { close(done) }
}

// finishAll plays every file to its end on e until both cameras complete; it returns
// the messages seen up to and including the second analysis_complete.
func finishAll(f *fakeInstance, e *enginetest.Engine) []map[string]any {
	defer autoFinish(e, 0, 1)()
	var seen []map[string]any
	seen = append(seen, f.srv.Expect("analysis_complete", &seen))
	seen = append(seen, f.srv.Expect("analysis_complete", &seen))
	return seen
}

// checkOutcome checks the outcome of crashes in the middle of cameras (camera id →
// its file ids): each file in crashed failed exactly once, every other file is done
// exactly once, and each camera completed with failed_count = its crashed files.
func checkOutcome(t *testing.T, seen []map[string]any, cams map[int64][]int64, crashed map[int64]bool) {
	t.Helper()
	done := map[int64]int{}
	failed := map[int64]int{}
	completed := map[int64]bool{}
	for _, m := range seen {
		id, _ := m["file_id"].(float64)
		switch m["type"] {
		case "file_done":
			done[int64(id)]++
		case "file_error":
			failed[int64(id)]++
			if r, _ := m["error_reason"].(string); !strings.Contains(r, "engine") && r != store.PrevDied {
				t.Errorf("file_error %v", m)
			}
		case "analysis_complete":
			cam := int64(m["camera_id"].(float64))
			lost := 0
			for _, f := range cams[cam] {
				if crashed[f] {
					lost++
				}
			}
			completed[cam] = true
			if m["failed_count"] != float64(lost) || m["processed_count"] != float64(len(cams[cam])-lost) {
				t.Errorf("analysis_complete %v, want failed_count %d", m, lost)
			}
		}
	}
	for cam, files := range cams {
		if !completed[cam] {
			t.Errorf("camera %d never completed", cam)
		}
		for _, id := range files {
			want := map[bool][2]int{true: {0, 1}, false: {1, 0}}[crashed[id]]
			if done[id] != want[0] || failed[id] != want[1] {
				t.Errorf("file %d: %d file_done, %d file_error; want %v", id, done[id], failed[id], want)
			}
		}
	}
}

// twoCameras lists the files of startTwoCameras.
func twoCameras(n int) map[int64][]int64 {
	cams := map[int64][]int64{}
	for i := int64(1); i <= int64(n); i++ {
		cams[1] = append(cams[1], i)
		cams[2] = append(cams[2], 100+i)
	}
	return cams
}

// A crash in the middle of two cameras costs the two files in flight: the engine is
// started again, the link and the queues stay, each slot's next file resets the tracker.
func TestFakeCrashRestartsInPlace(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 3})
	e0 := f.engine(0)
	startTwoCameras(f, e0, 5)
	e0.Finish(0, 1)
	playing(t, e0, 0, 2)
	e0.Crash("SIGSEGV")
	var seen []map[string]any
	crash := f.srv.Expect("engine_crashed", &seen)
	if crash["restarting"] != true || crash["restart_count"] != float64(1) || crash["restarts_left"] != float64(2) ||
		crash["signal"] != "SIGSEGV" {
		t.Fatalf("engine_crashed %v", crash)
	}
	back := f.srv.Expect("engine_restarted", &seen)
	if back["restart_count"] != float64(1) || back["restarts_left"] != float64(2) || back["ready_ms"].(float64) < 50 {
		t.Fatalf("engine_restarted %v", back)
	}
	e1 := f.engine(1)
	playing(t, e1, 0, 3)
	playing(t, e1, 1, 102)
	for _, p := range e1.Plays() {
		if !p.NewCamera {
			t.Errorf("play after the restart without a tracker reset: %+v", p)
		}
	}
	seen = append(seen, finishAll(f, e1)...)
	for _, m := range seen {
		if m["type"] == "file_error" && !strings.Contains(m["error_reason"].(string), "engine crashed while playing this file: signal SIGSEGV") {
			t.Errorf("file_error %v", m)
		}
		if m["type"] == "processing_started" {
			id := m["file_id"].(float64)
			if reset := m["tracker_reset"] == true; reset != (id == 3 || id == 102) {
				t.Errorf("processing_started %v", m)
			}
		}
	}
	checkOutcome(t, seen, twoCameras(5), map[int64]bool{2: true, 101: true})
	if n := f.srv.Pending(); n != 0 {
		t.Logf("%d messages left", n)
	}
}

// An engine that hangs with no request in flight is noticed by the liveness check
// within 3 s, killed and started again.
func TestFakeHangNoticed(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 3})
	e0 := f.engine(0)
	startTwoCameras(f, e0, 3)
	t0 := time.Now()
	e0.Hang()
	var seen []map[string]any
	crash := f.srv.Expect("engine_crashed", &seen)
	took := time.Since(t0)
	t.Logf("hang noticed after %v", took)
	if took > 3*time.Second {
		t.Errorf("hang noticed after %v", took)
	}
	if r, _ := crash["reason"].(string); !strings.Contains(r, "liveness") || crash["signal"] != "SIGKILL" || crash["restarting"] != true {
		t.Fatalf("engine_crashed %v", crash)
	}
	f.srv.Expect("engine_restarted", &seen)
	seen = append(seen, finishAll(f, f.engine(1))...)
	checkOutcome(t, seen, twoCameras(3), map[int64]bool{1: true, 101: true})
}

// Requests are answered while the engine is down; what they start waits for it.
func TestFakeRequestsWhileDown(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 1, gate: true})
	e0 := f.engine(0)
	out := filepath.Join(f.dir, "out")
	s1, p1 := fileset(0, 1, out, 1, 2)
	f.srv.Send(s1)
	f.srv.Send(p1)
	playing(t, e0, 0, 1)
	e0.Crash("SIGABRT")
	f.srv.Expect("engine_crashed", nil)
	f.srv.Expect("file_error", nil)
	s2, p2 := fileset(1, 2, out, 21)
	f.srv.Send(s2)
	if m := f.srv.Expect("analysis_started", nil); m["status"] != "ok" {
		t.Fatalf("start while down %v", m)
	}
	f.srv.Send(p2)
	s3, _ := fileset(1, 3, out)
	f.srv.Send(s3)
	f.srv.Expect("analysis_started", nil)
	f.srv.Send(`{"type":"interrupt_analysis","request_id":"i","stream_id":1,"camera_id":3}`)
	if m := f.srv.Expect("analysis_interrupted", nil); m["status"] != "ok" {
		t.Fatalf("interrupt while down %v", m)
	}
	f.srv.Send(`{"type":"query_analysis_status","request_id":"q","stream_id":0,"camera_id":1}`)
	st := f.srv.Expect("analysis_status", nil)
	if cam, _ := st["camera"].(map[string]any); cam["tracker_reset"] != true || cam["status"] != "running" {
		t.Fatalf("status while down %v", st)
	}
	f.srv.Send(`{"type":"query_metrics","request_id":"m"}`)
	f.srv.Expect("metrics", nil)
	f.gate <- struct{}{}
	f.srv.Expect("engine_restarted", nil)
	e1 := f.engine(1)
	playing(t, e1, 0, 2)
	playing(t, e1, 1, 21)
	seen := finishAll(f, e1)
	for _, m := range seen {
		if m["type"] == "analysis_complete" && m["camera_id"] == float64(1) && m["failed_count"] != float64(1) {
			t.Errorf("analysis_complete %v", m)
		}
	}
	// The budget of 1 is spent: the next crash ends the instance.
	e1.Crash("SIGSEGV")
	crash := f.srv.Expect("engine_crashed", nil)
	if crash["restarting"] != false || crash["restart_count"] != float64(1) || crash["restarts_left"] != float64(0) {
		t.Fatalf("last engine_crashed %v", crash)
	}
	if c := f.exit(); c != ExitCrashed {
		t.Fatalf("exit %d", c)
	}
}

// A signal while a restart waits calls the restart off; the instance exits cleanly.
func TestFakeSignalWhileDown(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 2, gate: true})
	f.engine(0).Crash("SIGSEGV")
	f.srv.Expect("engine_crashed", nil)
	f.srv.Send(`{"type":"terminate_app","request_id":"t"}`)
	f.srv.Expect("app_terminated", nil)
	if c := f.exit(); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
}

// Restarts that fail spend the budget like crashes; then the instance exits.
func TestFakeRestartFails(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 2, failing: true})
	f.engine(0).Crash("SIGSEGV")
	if m := f.srv.Expect("engine_crashed", nil); m["restarting"] != true {
		t.Fatalf("engine_crashed %v", m)
	}
	m := f.srv.Expect("engine_crashed", nil)
	if m["restarting"] != false || !strings.Contains(m["reason"].(string), "did not start again") || m["restart_count"] != float64(2) {
		t.Fatalf("last engine_crashed %v", m)
	}
	if c := f.exit(); c != ExitCrashed {
		t.Fatalf("exit %d", c)
	}
}

// An engine that closes its control connection but lives on is killed and replaced.
func TestFakeEngineDropsItsSocket(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 1})
	e := f.engine(0)
	e.CloseSocket()
	m := f.srv.Expect("engine_crashed", nil)
	if r, _ := m["reason"].(string); !strings.Contains(r, "closed its control connection") || m["restarting"] != true {
		t.Fatalf("engine_crashed %v", m)
	}
	f.srv.Expect("engine_restarted", nil)
	if st := e.ExitStatus(); st.Signal != "SIGKILL" {
		t.Fatalf("old engine ended with %v", st)
	}
}

// A command that meets the connection of an engine that just died reports the crash
// as a crash (its signal), not as an engine that stopped answering.
func TestFakeCommandMeetsDeadEngine(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 1})
	e := f.engine(0)
	s, p := fileset(0, 1, filepath.Join(f.dir, "out"), 1, 2)
	f.srv.Send(s)
	f.srv.Send(p)
	playing(t, e, 0, 1)
	e.Crash("SIGSEGV")
	f.srv.Send(`{"type":"interrupt_analysis","request_id":"i","stream_id":0,"camera_id":1}`)
	m := f.srv.Expect("engine_crashed", nil)
	if m["signal"] != "SIGSEGV" || m["reason"] != nil {
		t.Fatalf("engine_crashed %v", m)
	}
}
