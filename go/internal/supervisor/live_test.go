package supervisor

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine/enginetest"
)

func videostream(stream int, camera int64, uri, out string) string {
	return fmt.Sprintf(`{"type":"start_analysis","request_id":"v%d","stream_id":%d,"camera_id":%d,"camera_type":"videostream",
		"camera_path":"","camera_name":"live%d","output_dir":%q,
		"init_file":{"file_type":"videostream","file_id":%d,"file_name":"cam%d","file_path":%q,"output_path":""}}`,
		camera, stream, camera, camera, out, camera*10, camera, uri)
}

// liveItem asks for the status of camera on stream and returns its processing item's
// live object (nil when it has none).
func liveItem(t *testing.T, f *fakeInstance, stream int, camera int64) map[string]any {
	t.Helper()
	f.srv.Send(fmt.Sprintf(`{"type":"query_analysis_status","request_id":"q%d","stream_id":%d,"camera_id":%d}`, camera, stream, camera))
	st := f.srv.Expect("analysis_status", nil)
	proc, _ := st["camera"].(map[string]any)["files"].(map[string]any)["processing"].([]any)
	if len(proc) != 1 {
		t.Fatalf("camera %d processing %v", camera, proc)
	}
	live, _ := proc[0].(map[string]any)["live"].(map[string]any)
	return live
}

// notOther fails on any message of seen about another stream than stream.
func notOther(t *testing.T, seen []map[string]any, stream int) {
	t.Helper()
	for _, m := range seen {
		if s, ok := m["stream_id"]; ok && s != float64(stream) {
			t.Fatalf("an outage of stream %d sent %v", stream, m)
		}
	}
}

// Three live cameras and a file camera: outages reach FastAPI as stream_lost and
// stream_resumed of that camera only, the status shows the live state moving, a
// stream that gives up (or a 404) ends its camera with file_error and
// analysis_complete, and interrupt_analysis stops a camera connecting, playing or
// waiting to retry.
func TestFakeLiveCameras(t *testing.T) {
	f := startFake(t, fakeOpts{streams: 4})
	e := f.engine(0)
	out := filepath.Join(f.dir, "out")
	for i := int64(0); i < 3; i++ {
		f.srv.Send(videostream(int(i), i+1, fmt.Sprintf("rtsp://127.0.0.1:8554/cam%d", i), out))
		if m := f.srv.Expect("analysis_started", nil); m["status"] != "ok" {
			t.Fatalf("start %v", m)
		}
	}
	s4, p4 := fileset(3, 4, out, 41)
	f.srv.Send(s4)
	f.srv.Send(p4)
	for i := int64(0); i < 3; i++ {
		playing(t, e, int(i), (i+1)*10)
	}
	playing(t, e, 3, 41)
	if l := liveItem(t, f, 1, 2); l["state"] != "playing" || l["fps"] != 30.0 || l["last_frame_age_ms"] != 0.0 || l["reconnects"] != 0.0 {
		t.Fatalf("live before the outage %v", l)
	}

	// An outage of stream 1 and its return.
	var seen []map[string]any
	e.LoseStream(1, "end of stream", true)
	lost := f.srv.Expect("stream_lost", &seen)
	if lost["request_id"] != "v2" || lost["stream_id"] != 1.0 || lost["camera_id"] != 2.0 || lost["file_id"] != 20.0 ||
		lost["reason"] != "end of stream" || lost["will_retry"] != true {
		t.Fatalf("stream_lost %v", lost)
	}
	if l := liveItem(t, f, 1, 2); l["state"] != "reconnecting" || l["fps"] != 0.0 || l["last_frame_age_ms"] != 1000.0 || l["reconnects"] != 0.0 {
		t.Fatalf("live during the outage %v", l)
	}
	e.LoseStream(1, "connection refused", true) // a failed retry: not reported again
	e.ResumeStream(1, 2300)
	res := f.srv.Expect("stream_resumed", &seen)
	if res["request_id"] != "v2" || res["stream_id"] != 1.0 || res["camera_id"] != 2.0 || res["file_id"] != 20.0 ||
		res["down_ms"] != 2300.0 || res["attempts"] != 1.0 || res["tracker_kept"] != true {
		t.Fatalf("stream_resumed %v", res)
	}
	if l := liveItem(t, f, 1, 2); l["state"] != "playing" || l["reconnects"] != 1.0 {
		t.Fatalf("live after the outage %v", l)
	}
	notOther(t, seen, 1)
	for _, m := range seen {
		if m["type"] == "stream_lost" {
			t.Fatalf("one outage reported twice: %v", m)
		}
	}
	if id, ok := e.Playing(1); !ok || id != 20 {
		t.Fatal("the camera ended with the outage")
	}

	// Stream 2 gives up: stream_lost without retry, file_error, analysis_complete.
	seen = nil
	e.LoseStream(2, "401 Unauthorized", false)
	done := f.srv.Expect("analysis_complete", &seen)
	if done["camera_id"] != 3.0 || done["processed_count"] != 0.0 || done["failed_count"] != 1.0 {
		t.Fatalf("analysis_complete %v", done)
	}
	var kinds []string
	for _, m := range seen {
		kinds = append(kinds, fmt.Sprintf("%v:%v:%v:%v", m["type"], m["file_id"], m["will_retry"], m["error_reason"]))
	}
	if got := strings.Join(kinds, " "); got != "stream_lost:30:false:<nil> file_error:30:<nil>:401 Unauthorized" {
		t.Fatalf("events before analysis_complete: %s", got)
	}
	notOther(t, seen, 2)

	// A path that 404s: refused at once.
	seen = nil
	f.srv.Send(videostream(2, 5, "rtsp://127.0.0.1:8554/404", out))
	done = f.srv.Expect("analysis_complete", &seen)
	if done["camera_id"] != 5.0 || done["failed_count"] != 1.0 {
		t.Fatalf("analysis_complete %v", done)
	}
	for _, m := range seen {
		if m["type"] == "file_error" && m["error_reason"] != enginetest.NotFound {
			t.Fatalf("file_error %v", m)
		}
	}

	// Interrupted while waiting to retry, while connecting, while playing.
	e.LoseStream(0, "no frame for 5 s", true)
	f.srv.Expect("stream_lost", nil)
	f.srv.Send(videostream(2, 6, "rtsp://127.0.0.1:8554/connecting", out))
	f.srv.Expect("analysis_started", nil)
	playing(t, e, 2, 60)
	if l := liveItem(t, f, 2, 6); l["state"] != "connecting" || l["last_frame_age_ms"] != nil {
		t.Fatalf("live while connecting %v", l)
	}
	for _, c := range []struct {
		stream int
		camera int64
	}{{0, 1}, {2, 6}, {1, 2}} {
		f.srv.Send(fmt.Sprintf(`{"type":"interrupt_analysis","request_id":"i%d","stream_id":%d,"camera_id":%d}`, c.camera, c.stream, c.camera))
		if m := f.srv.Expect("analysis_interrupted", nil); m["status"] != "ok" || m["camera_id"] != float64(c.camera) {
			t.Fatalf("interrupt %v", m)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		_, p0 := e.Playing(0)
		_, p1 := e.Playing(1)
		_, p2 := e.Playing(2)
		if !p0 && !p1 && !p2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still playing after the interrupts: %v %v %v", p0, p1, p2)
		}
	}

	// The file camera played on through all of it.
	seen = nil
	e.Finish(3, 41)
	done = f.srv.Expect("analysis_complete", &seen)
	if done["camera_id"] != 4.0 || done["processed_count"] != 1.0 || done["failed_count"] != 0.0 {
		t.Fatalf("file camera %v", done)
	}
	for _, m := range seen {
		if m["type"] != "file_done" {
			t.Fatalf("file camera saw %v", m)
		}
	}
}
