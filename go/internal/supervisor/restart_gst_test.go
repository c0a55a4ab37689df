package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The "done when" drills of an engine restart, against the real gst engine: a
// 20-file camera on slot 0 and a 10-file camera on slot 1, the engine killed or
// stopped in the middle.

// startCameras starts the two cameras and waits until slot 0 plays its fifth file (or
// a later one) while slot 1 plays one too; the messages up to then go into seen.
func startCameras(t *testing.T, h *harness, seen *[]map[string]any) map[int64][]int64 {
	t.Helper()
	clip := filepath.Join(h.dir, "clip.mp4")
	makeClip(t, clip, 150)
	out := filepath.Join(h.dir, "out")
	cams := map[int64][]int64{}
	for _, c := range []struct {
		slot  int
		cam   int64
		files int
	}{{0, 1, 20}, {1, 2, 10}} {
		var items []string
		for i := 1; i <= c.files; i++ {
			id := c.cam*100 + int64(i)
			cams[c.cam] = append(cams[c.cam], id)
			items = append(items, fmt.Sprintf(`{"file_type":"file","file_id":%d,"file_path":%q,"output_path":%q}`,
				id, clip, filepath.Join(out, fmt.Sprint(c.cam), fmt.Sprintf("%d.txt", id))))
		}
		items = append(items, `{"file_type":"eos"}`)
		h.srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"s%d","stream_id":%d,"camera_id":%d,"camera_type":"fileset",
			"camera_path":"/v","camera_name":"c","output_dir":%q}`, c.cam, c.slot, c.cam, filepath.Join(out, fmt.Sprint(c.cam))))
		h.srv.Send(fmt.Sprintf(`{"type":"push_file","request_id":"p%d","stream_id":%d,"camera_id":%d,"files":[%s]}`,
			c.cam, c.slot, c.cam, strings.Join(items, ",")))
	}
	// Kill while both slots have a file in flight, as far as the messages read so far
	// tell (a slot's file_done may be on its way): the report must name what played.
	playing := map[float64]bool{}
	reached := false
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, ok := h.srv.Next(time.Until(deadline))
		if !ok {
			t.Fatal("the cameras did not get going")
		}
		m := f.Map()
		*seen = append(*seen, m)
		slot, _ := m["stream_id"].(float64)
		switch m["type"] {
		case "processing_started":
			playing[slot] = true
			reached = reached || m["file_id"] == float64(105)
		case "file_done", "file_error":
			playing[slot] = false
		}
		if reached && playing[0] && playing[1] {
			return cams
		}
	}
}

// inFlight returns the files of a crash report's cameras_in_flight, which must be
// exactly the files playing when it came: started and not ended in seen (every message
// the supervisor sent before the report). A slot between two files at that moment has
// none.
func inFlight(t *testing.T, crash map[string]any, seen []map[string]any) map[int64]bool {
	t.Helper()
	out := map[int64]bool{}
	list, _ := crash["cameras_in_flight"].([]any)
	for _, c := range list {
		if id, ok := c.(map[string]any)["file_id"].(float64); ok {
			out[int64(id)] = true
		}
	}
	playing := map[int64]bool{}
	for _, m := range seen {
		id, _ := m["file_id"].(float64)
		switch m["type"] {
		case "processing_started":
			playing[int64(id)] = true
		case "file_done", "file_error":
			delete(playing, int64(id))
		}
	}
	if len(out) == 0 || fmt.Sprint(out) != fmt.Sprint(playing) {
		t.Fatalf("cameras_in_flight %v: want the files playing then, %v", crash["cameras_in_flight"], playing)
	}
	return out
}

// gone fails unless pid has been reaped.
func gone(t *testing.T, pid int) {
	t.Helper()
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("engine pid %d still exists", pid)
	}
}

func restartDrill(t *testing.T, sig syscall.Signal, within time.Duration) {
	h := startInstanceWith(t, 2, 3)
	h.srv.Expect("app_ready", nil)
	var seen []map[string]any
	cams := startCameras(t, h, &seen)
	old := h.current()
	t0 := time.Now()
	if err := syscall.Kill(old.PID(), sig); err != nil {
		t.Fatal(err)
	}
	crash := h.srv.Expect("engine_crashed", &seen)
	noticed := time.Since(t0)
	before := seen // what was sent before the report
	back := h.srv.Expect("engine_restarted", &seen)
	ready := time.Since(t0)
	t.Logf("%v: engine_crashed after %v, engine_restarted after %v (ready_ms %v)", sig, noticed, ready, back["ready_ms"])
	if noticed > within {
		t.Errorf("engine_crashed after %v, want within %v", noticed, within)
	}
	if ready-noticed > 2*time.Second {
		t.Errorf("engine ready again %v after the report, want within 2 s", ready-noticed)
	}
	if crash["restarting"] != true || crash["signal"] != "SIGKILL" || crash["restart_count"] != float64(1) {
		t.Fatalf("engine_crashed %v", crash)
	}
	crashed := inFlight(t, crash, before)
	seen = append(seen, h.srv.Expect("analysis_complete", &seen))
	seen = append(seen, h.srv.Expect("analysis_complete", &seen))
	checkOutcome(t, seen, cams, crashed)
	for _, m := range seen {
		if m["type"] == "app_ready" {
			t.Errorf("the link dropped: %v", m)
		}
	}
	gone(t, old.PID())
	if cur := h.current(); cur == old || len(h.engines) != 2 {
		t.Fatalf("%d engines started", len(h.engines))
	}
}

func TestGstEngineKilledRestarts(t *testing.T) { restartDrill(t, syscall.SIGKILL, time.Second) }

func TestGstEngineStoppedRestarts(t *testing.T) { restartDrill(t, syscall.SIGSTOP, 3*time.Second) }

// Four kills inside the window with a budget of 3: the fourth ends the instance.
func TestGstEngineRestartBudget(t *testing.T) {
	h := startInstanceWith(t, 1, 3)
	h.srv.Expect("app_ready", nil)
	for i := 1; i <= 4; i++ {
		e := h.current()
		if err := syscall.Kill(e.PID(), syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		crash := h.srv.Expect("engine_crashed", nil)
		if i < 4 {
			if crash["restarting"] != true || crash["restart_count"] != float64(i) || crash["restarts_left"] != float64(3-i) {
				t.Fatalf("kill %d: engine_crashed %v", i, crash)
			}
			h.srv.Expect("engine_restarted", nil)
			continue
		}
		if crash["restarting"] != false || crash["restart_count"] != float64(3) || crash["restarts_left"] != float64(0) {
			t.Fatalf("kill 4: engine_crashed %v", crash)
		}
	}
	if code := h.exit(t, 15*time.Second, "the fourth crash"); code != ExitCrashed {
		t.Fatalf("exit %d, want %d", code, ExitCrashed)
	}
	for _, e := range h.engines {
		gone(t, e.PID())
	}
}
