package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/pathcheck"
)

// The watchdog's timings in these tests: a progress reply every 20 ms, a stall after
// 200 ms without a frame.
const (
	testProbe = 20 * time.Millisecond
	testStall = 200 * time.Millisecond
)

func fileEvents(seen []map[string]any) map[int64]string {
	out := map[int64]string{}
	for _, m := range seen {
		if m["type"] == "file_done" || m["type"] == "file_error" {
			out[int64(m["file_id"].(float64))] = fmt.Sprint(m["type"])
		}
	}
	return out
}

func completes(seen []map[string]any) int {
	n := 0
	for _, m := range seen {
		if m["type"] == "analysis_complete" {
			n++
		}
	}
	return n
}

// A slot whose frames stop: the file fails with a reason that says so and for how
// long, the slot is stopped, the camera goes on; the other slot loses nothing.
func TestFakeSingleStallCostsOneFile(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 1, probe: testProbe, stall: testStall})
	e := f.engine(0)
	startTwoCameras(f, e, 3)
	e.Wedge(0, true)
	t0 := time.Now()
	var seen []map[string]any
	fe := f.srv.Expect("file_error", &seen)
	took := time.Since(t0)
	reason, _ := fe["error_reason"].(string)
	if fe["file_id"] != float64(1) || !strings.HasPrefix(reason, "stalled: no new frame for ") ||
		!strings.Contains(reason, "the stream was stopped") {
		t.Fatalf("file_error %v", fe)
	}
	if took < testStall || took > testStall+time.Second {
		t.Errorf("file_error %v after the wedge", took)
	}
	e.Wedge(0, false) // the stop cleared it
	seen = append(seen, fe)
	seen = append(seen, finishAll(f, e)...)
	got := fileEvents(seen)
	for id, want := range map[int64]string{1: "file_error", 2: "file_done", 3: "file_done", 101: "file_done", 102: "file_done", 103: "file_done"} {
		if got[id] != want {
			t.Errorf("file %d: %q, want %q (%v)", id, got[id], want, got)
		}
	}
	for _, m := range seen {
		if m["type"] == "engine_crashed" {
			t.Fatalf("a single stall restarted the engine: %v", m)
		}
	}
	if ops := strings.Join(e.Ops(), ","); !strings.Contains(ops, "stop 0") {
		t.Fatalf("slot 0 never stopped: %s", ops)
	}
}

// The same slot stalls again on its next file: the pipeline is stuck, the engine is
// restarted as for a hang (queues kept), and analysis_status shows the slot being
// handled meanwhile. A wedge after every restart spends the budget: exit 3.
func TestFakeRepeatedStallRestartsTheEngineThenExits(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 1, probe: testProbe, stall: testStall, gate: true})
	e := f.engine(0)
	startTwoCameras(f, e, 4)
	stop := autoFinish(e, 1)
	defer stop()
	e.Wedge(0, true)
	var seen []map[string]any
	first := f.srv.Expect("file_error", &seen)
	if first["file_id"] != float64(1) {
		t.Fatalf("first file_error %v", first)
	}
	crash := f.srv.Expect("engine_crashed", &seen)
	reason, _ := crash["reason"].(string)
	if !strings.HasPrefix(reason, "pipeline stalled: stream 0 stalled again on the file after a stalled one") ||
		crash["restarting"] != true || crash["signal"] != "SIGKILL" {
		t.Fatalf("engine_crashed %v", crash)
	}
	// While the restart waits: stream 0 shows its stall.
	f.srv.Send(`{"type":"query_analysis_status","request_id":"q1"}`)
	st := f.srv.Expect("analysis_status", &seen)
	s0 := st["streams"].([]any)[0].(map[string]any)
	stalled, _ := s0["stalled"].(map[string]any)
	if s0["status"] != "error" || stalled["action"] != "restarting" || stalled["file_id"] != float64(2) ||
		stalled["stalled_ms"].(float64) < float64(testStall.Milliseconds()) {
		t.Fatalf("stream 0 while restarting: %v", s0)
	}
	if s1 := st["streams"].([]any)[1].(map[string]any); s1["stalled"] != nil {
		t.Fatalf("stream 1: %v", s1)
	}
	f.gate <- struct{}{}
	f.srv.Expect("engine_restarted", &seen)
	for _, m := range seen {
		if m["type"] == "file_error" && m["file_id"] == float64(2) {
			if r, _ := m["error_reason"].(string); !strings.HasPrefix(r, "the engine's pipeline stalled while playing this file") {
				t.Fatalf("file 2: %v", m)
			}
		}
	}
	// The new engine wedges too: stall, stall again, no restart left.
	e2 := f.engine(1)
	stop2 := autoFinish(e2, 1)
	defer stop2()
	e2.Wedge(0, true)
	crash = f.srv.Expect("engine_crashed", &seen)
	if crash["restarting"] != false || !strings.HasPrefix(crash["reason"].(string), "pipeline stalled") {
		t.Fatalf("second engine_crashed %v", crash)
	}
	if c := f.exit(); c != ExitCrashed {
		t.Fatalf("exit %d", c)
	}
}

// Two slots stalled together: the pipeline, not a slot, is stuck.
func TestFakeTwoSlotsStalledRestartAtOnce(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 2, restarts: 1, probe: testProbe, stall: testStall})
	e := f.engine(0)
	startTwoCameras(f, e, 2)
	e.Wedge(0, true)
	e.Wedge(1, true)
	var seen []map[string]any
	crash := f.srv.Expect("engine_crashed", &seen)
	if r, _ := crash["reason"].(string); !strings.Contains(r, "streams 0 and 1 stalled") {
		t.Fatalf("engine_crashed %v", crash)
	}
	f.srv.Expect("engine_restarted", &seen)
	seen = append(seen, finishAll(f, f.engine(1))...)
	checkOutcome(t, seen, twoCameras(2), map[int64]bool{1: true, 101: true})
}

// A stop that does not bring the slot back to idle is a stuck pipeline too.
func TestFakeStopThatDoesNotTakeRestarts(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 1, probe: testProbe, stall: testStall, stopGrace: 100 * time.Millisecond})
	e := f.engine(0)
	s, p := fileset(0, 1, filepath.Join(f.dir, "out"), 1, 2, 3)
	f.srv.Send(s)
	f.srv.Send(p)
	playing(t, e, 0, 1)
	e.StickyStop(true)
	e.Wedge(0, true)
	var seen []map[string]any
	crash := f.srv.Expect("engine_crashed", &seen)
	if r, _ := crash["reason"].(string); !strings.Contains(r, "stream 0 refused file 2 while its stalled file was being stopped") {
		t.Fatalf("engine_crashed %v", crash)
	}
	// File 2 met the slot still busy: it fails with the pipeline (not as bad input), and
	// the rest of the camera's queue is kept for the new engine.
	seen = append(seen, crash)
	stop := autoFinish(f.engine(1), 0)
	seen = append(seen, f.srv.Expect("analysis_complete", &seen))
	stop()
	for _, m := range seen {
		r, _ := m["error_reason"].(string)
		if m["type"] == "file_error" && m["file_id"] == float64(2) && !strings.Contains(r, "pipeline stalled") {
			t.Fatalf("file 2: %v", m)
		}
	}
	if got := fileEvents(seen); got[1] != "file_error" || got[2] != "file_error" || got[3] != "file_done" {
		t.Fatalf("files: %v", got)
	}
}

// A stalled file stopped, then a new camera on the slot whose first file has the same
// id: the stop took (its play was accepted), so nothing escalates.
func TestFakeStallThenSameFileIDOfNextCamera(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 1, restarts: 1, probe: testProbe, stall: testStall, stopGrace: 100 * time.Millisecond})
	e := f.engine(0)
	s, p := fileset(0, 1, filepath.Join(f.dir, "out"), 1)
	f.srv.Send(s)
	f.srv.Send(p)
	playing(t, e, 0, 1)
	e.Wedge(0, true)
	var seen []map[string]any
	if fe := f.srv.Expect("file_error", &seen); fe["file_id"] != float64(1) {
		t.Fatalf("file_error %v", fe)
	}
	e.Wedge(0, false)
	f.srv.Expect("analysis_complete", &seen)
	s, p = fileset(0, 2, filepath.Join(f.dir, "out2"), 1)
	f.srv.Send(s)
	f.srv.Send(p)
	playing(t, e, 0, 1)
	deadline := time.Now().Add(5 * (100*time.Millisecond + testProbe))
	for time.Now().Before(deadline) {
		if fr, ok := f.srv.Next(time.Until(deadline)); ok && fr.Map()["type"] == "engine_crashed" {
			t.Fatalf("escalated on the next camera's file 1: %v", fr.Map())
		}
	}
}

// Input paths: a FIFO fails at once and never reaches the engine; a path that does not
// answer fails after the deadline while requests are answered and the other slot plays.
func TestFakePathChecks(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "cam.mp4")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	var once sync.Once
	defer once.Do(func() { close(release) })
	hung := func(path string) error {
		if strings.HasPrefix(path, "/hung/") {
			<-release // a mount that stopped answering
			return nil
		}
		return pathcheck.Local(path)
	}
	const deadline = 300 * time.Millisecond
	f := startFake(t, fakeOpts{streams: 2, fileTime: 5 * time.Millisecond, pathTimeout: deadline, pathCheck: hung})
	e := f.engine(0)
	out := filepath.Join(dir, "out")
	item := func(id int64, path string) string {
		return fmt.Sprintf(`{"file_type":"file","file_id":%d,"file_path":%q,"output_path":%q}`, id, path,
			filepath.Join(out, fmt.Sprint(id)+".txt"))
	}
	f.srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"s1","stream_id":0,"camera_id":1,"camera_type":"fileset","output_dir":%q}`, out))
	f.srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"s2","stream_id":1,"camera_id":2,"camera_type":"fileset","output_dir":%q}`, out))
	f.srv.Expect("analysis_started", nil)
	f.srv.Expect("analysis_started", nil)
	t0 := time.Now()
	f.srv.Send(fmt.Sprintf(`{"type":"push_file","request_id":"p1","stream_id":0,"camera_id":1,"files":[%s,%s,%s,{"file_type":"eos"}]}`,
		item(1, fifo), item(2, "/hung/2.mp4"), item(3, "/v/3.mp4")))
	var files []string
	for i := 0; i < 20; i++ {
		files = append(files, item(int64(100+i), fmt.Sprintf("/v/%d.mp4", 100+i)))
	}
	f.srv.Send(fmt.Sprintf(`{"type":"push_file","request_id":"p2","stream_id":1,"camera_id":2,"files":[%s,{"file_type":"eos"}]}`,
		strings.Join(files, ",")))
	var seen []map[string]any
	fe := f.srv.Expect("file_error", &seen)
	if fe["file_id"] != float64(1) || fe["error_reason"] != "not a regular file: "+fifo {
		t.Fatalf("fifo: %v", fe)
	}
	// Requests are answered at once while the check of file 2 hangs.
	var longest time.Duration
	for time.Since(t0) < deadline {
		q0 := time.Now()
		f.srv.Send(`{"type":"query_analysis_status","request_id":"q","stream_id":1}`)
		f.srv.Expect("analysis_status", &seen)
		longest = max(longest, time.Since(q0))
	}
	fe = f.srv.Expect("file_error", &seen)
	took := time.Since(t0)
	if fe["file_id"] != float64(2) || fe["error_reason"] != "path did not answer within 300ms: /hung/2.mp4" {
		t.Fatalf("hung: %v", fe)
	}
	if took < deadline || took > deadline+time.Second {
		t.Errorf("file_error after %v", took)
	}
	if longest > 100*time.Millisecond {
		t.Errorf("a status request took %v while a path hung", longest)
	}
	for completes(seen) < 2 {
		seen = append(seen, f.srv.Expect("analysis_complete", &seen))
	}
	got := fileEvents(seen)
	if got[3] != "file_done" {
		t.Fatalf("file 3: %v", got)
	}
	for i := int64(100); i < 120; i++ {
		if got[i] != "file_done" {
			t.Fatalf("stream 1 file %d: %q", i, got[i])
		}
	}
	for _, pl := range e.Plays() {
		if pl.FileID == 1 || pl.FileID == 2 {
			t.Fatalf("refused path reached the engine: %+v", pl)
		}
	}
	once.Do(func() { close(release) })
	if _, err := os.Stat(fifo); err != nil {
		t.Fatal(err)
	}
}
