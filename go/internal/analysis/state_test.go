package analysis

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// t0 is when the tests' requests arrive, unless a test says otherwise.
var t0 = time.Unix(1_700_000_000, 0)

// Request builders. Files are given as ids; paths are /v/<cam>/<id>.mp4.

func item(cam, id int64) protocol.FileItem {
	return protocol.FileItem{FileType: protocol.FileTypeFile, FileID: id,
		FilePath: fmt.Sprintf("/v/%d/%d.mp4", cam, id), FileName: fmt.Sprintf("%d.mp4", id),
		OutputPath: fmt.Sprintf("/o/%d/%d.txt", cam, id)}
}

func start(req string, slot int, cam int64, typ string, init ...int64) *protocol.StartAnalysis {
	r := &protocol.StartAnalysis{RequestID: req, StreamID: slot, CameraID: cam, CameraType: typ,
		CameraPath: fmt.Sprintf("/v/%d", cam), CameraName: fmt.Sprint("cam", cam), OutputDir: fmt.Sprintf("/o/%d", cam)}
	if len(init) > 0 {
		it := item(cam, init[0])
		r.InitFile = &it
	}
	return r
}

func stream(req string, slot int, cam int64, uri string) *protocol.StartAnalysis {
	return &protocol.StartAnalysis{RequestID: req, StreamID: slot, CameraID: cam, CameraType: protocol.CameraVideostream,
		OutputDir: "/o", InitFile: &protocol.FileItem{FileType: protocol.FileTypeStream, FileID: cam, FilePath: uri, FileName: uri}}
}

// push builds a push_file; a negative id stands for the eos item.
func push(req string, slot int, cam int64, ids ...int64) *protocol.PushFile {
	r := &protocol.PushFile{RequestID: req, StreamID: slot, CameraID: cam}
	for _, id := range ids {
		if id < 0 {
			r.Files = append(r.Files, protocol.FileItem{FileType: protocol.FileTypeEOS})
		} else {
			r.Files = append(r.Files, item(cam, id))
		}
	}
	return r
}

const eos = -1

func interrupt(req string, slot int, cam int64) *protocol.InterruptAnalysis {
	return &protocol.InterruptAnalysis{RequestID: req, StreamID: slot, CameraID: cam, Reason: "user_cancelled"}
}

func play(slot int, cam, id int64, newCam bool) Command {
	return Command{Op: OpPlay, Slot: slot, FileID: id, URI: fmt.Sprintf("file:///v/%d/%d.mp4", cam, id), NewCamera: newCam,
		OutputPath: fmt.Sprintf("/o/%d/%d.txt", cam, id)}
}

// wire is a message as FastAPI receives it.
func wire(t *testing.T, m any) map[string]any {
	t.Helper()
	var out map[string]any
	if err := json.Unmarshal(protocol.Encode(m), &out); err != nil {
		t.Fatalf("encode %T: %v", m, err)
	}
	return out
}

// summary renders events compactly: "type:req:slot:cam:file" plus counts.
func summary(t *testing.T, evs []any) []string {
	t.Helper()
	out := []string{}
	for _, e := range evs {
		m := wire(t, e)
		s := fmt.Sprintf("%v:%v:%v:%v", m["type"], m["request_id"], m["stream_id"], m["camera_id"])
		if f, ok := m["file_id"]; ok {
			s += fmt.Sprintf(":%v", f)
		}
		if m["type"] == protocol.TypeAnalysisComplete {
			s += fmt.Sprintf(" done=%v failed=%v", m["processed_count"], m["failed_count"])
		}
		out = append(out, s)
	}
	return out
}

func expectReply(t *testing.T, res Result, typ, status, contains string) map[string]any {
	t.Helper()
	if res.Reply == nil {
		t.Fatalf("no reply, want %s %s", typ, status)
	}
	m := wire(t, res.Reply)
	text, _ := m["message"].(string)
	if status == protocol.StatusError {
		text, _ = m["error_reason"].(string)
	}
	if m["type"] != typ || m["status"] != status || !strings.Contains(text, contains) {
		t.Fatalf("reply %v, want %s %s containing %q", m, typ, status, contains)
	}
	return m
}

func expectEvents(t *testing.T, res Result, want ...string) {
	t.Helper()
	if got := summary(t, res.Events); !reflect.DeepEqual(got, append([]string{}, want...)) {
		t.Fatalf("events\n got  %q\n want %q", got, want)
	}
}

func expectCommands(t *testing.T, res Result, want ...Command) {
	t.Helper()
	if len(res.Commands) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(res.Commands, want) {
		t.Fatalf("commands\n got  %+v\n want %+v", res.Commands, want)
	}
}

func TestFileCamera(t *testing.T) {
	s := New(2)
	res := s.Start(start("r1", 1, 5, protocol.CameraFile, 5), t0)
	m := expectReply(t, res, "analysis_started", "ok", "Stream 1 for camera 5 analysis started")
	if m["request_id"] != "r1" || m["stream_id"] != 1.0 || m["camera_id"] != 5.0 || !res.Changed {
		t.Fatalf("reply %v", m)
	}
	expectCommands(t, res, play(1, 5, 5, true))
	expectEvents(t, res, "processing_started:r1:1:5:5")
	if !s.Busy() {
		t.Fatal("not busy")
	}
	if res = s.FileStarted(1, 5); !res.Changed || res.Ignored != "" || res.Reply != nil || len(res.Events) != 0 {
		t.Fatalf("FileStarted %+v", res)
	}
	res = s.FileDone(1, 5, 60)
	expectEvents(t, res, "file_done:r1:1:5:5", "analysis_complete:r1:1:5 done=1 failed=0")
	expectCommands(t, res, Command{Op: OpReset, Slot: 1})
	if res.Reply != nil || s.Busy() {
		t.Fatalf("reply %v busy %v", res.Reply, s.Busy())
	}
	done := wire(t, res.Events[0])
	if done["processed_file"] != "5.mp4" || done["frames"] != 60.0 {
		t.Fatalf("file_done %v", done)
	}
	if c := wire(t, res.Events[1]); c["status"] != "done" || !strings.Contains(c["message"].(string), "Stream 1 is free") {
		t.Fatalf("analysis_complete %v", c)
	}
}

func TestFilesetIncremental(t *testing.T) {
	s := New(1)
	res := s.Start(start("r1", 0, 7, protocol.CameraFileset), t0)
	expectReply(t, res, "analysis_started", "ok", "started")
	expectCommands(t, res)
	expectEvents(t, res)
	if !s.Busy() {
		t.Fatal("a fileset waiting for files is running")
	}

	res = s.Push(push("p1", 0, 7, 1, 2), t0)
	if res.Reply != nil || !res.Changed {
		t.Fatalf("successful push: %+v", res)
	}
	expectCommands(t, res, play(0, 7, 1, true))
	expectEvents(t, res, "processing_started:p1:0:7:1")

	res = s.FileDone(0, 1, 10)
	expectEvents(t, res, "file_done:p1:0:7:1", "processing_started:p1:0:7:2")
	expectCommands(t, res, play(0, 7, 2, false))

	res = s.Push(push("p2", 0, 7, 3), t0)
	expectCommands(t, res) // file 2 still playing
	res = s.Push(push("p3", 0, 7, eos), t0)
	expectEvents(t, res)
	expectCommands(t, res)

	res = s.FileDone(0, 2, 10)
	expectEvents(t, res, "file_done:p1:0:7:2", "processing_started:p2:0:7:3")
	expectCommands(t, res, play(0, 7, 3, false))
	res = s.FileDone(0, 3, 10)
	expectEvents(t, res, "file_done:p2:0:7:3", "analysis_complete:p3:0:7 done=3 failed=0")
	expectCommands(t, res, Command{Op: OpReset, Slot: 0})
	if s.Busy() {
		t.Fatal("busy after completion")
	}
}

func TestFilesetDrainsThenWaits(t *testing.T) {
	s := New(1)
	s.Start(start("r1", 0, 7, protocol.CameraFileset, 1), t0)
	res := s.FileDone(0, 1, 3)
	expectEvents(t, res, "file_done:r1:0:7:1")
	expectCommands(t, res)
	if !s.Busy() {
		t.Fatal("camera without eos must keep its slot")
	}
	res = s.Push(push("p1", 0, 7, 2, eos), t0)
	expectCommands(t, res, play(0, 7, 2, false))
	res = s.FileDone(0, 2, 3)
	expectEvents(t, res, "file_done:p1:0:7:2", "analysis_complete:p1:0:7 done=2 failed=0")
}

func TestFilesetEOSOnly(t *testing.T) {
	s := New(1)
	s.Start(start("r1", 0, 7, protocol.CameraFileset), t0)
	res := s.Push(push("p1", 0, 7, eos), t0)
	expectEvents(t, res, "analysis_complete:p1:0:7 done=0 failed=0")
	expectCommands(t, res, Command{Op: OpReset, Slot: 0})
}

func TestFileFailedMovesOn(t *testing.T) {
	s := New(1)
	s.Start(start("r1", 0, 7, protocol.CameraFileset, 1), t0)
	s.Push(push("p1", 0, 7, 2, 3, eos), t0)
	res := s.FileFailed(0, 1, "Resource not found")
	expectEvents(t, res, "file_error:r1:0:7:1", "processing_started:p1:0:7:2")
	expectCommands(t, res, play(0, 7, 2, false))
	if e := wire(t, res.Events[0]); e["error_reason"] != "Resource not found" || e["current_file"] != "1.mp4" {
		t.Fatalf("file_error %v", e)
	}
	s.FileStarted(0, 2)
	s.FileDone(0, 2, 5)
	res = s.FileFailed(0, 3, "engine refused the file")
	expectEvents(t, res, "file_error:p1:0:7:3", "analysis_complete:p1:0:7 done=1 failed=2")
}

func TestVideostream(t *testing.T) {
	s := New(2)
	res := s.Start(stream("r1", 1, 42, "rtsp://cam.local:554/live?a=1&b=2"), t0)
	expectCommands(t, res, Command{Op: OpPlay, Slot: 1, FileID: 42, URI: "rtsp://cam.local:554/live?a=1&b=2", NewCamera: true})
	res = s.Push(push("p", 1, 42, 1), t0)
	expectReply(t, res, "push_ack", "error", `camera_type "videostream"`)
	// A stream that ends on its own completes the camera.
	res = s.FileDone(1, 42, 1000)
	expectEvents(t, res, "file_done:r1:1:42:42", "analysis_complete:r1:1:42 done=1 failed=0")

	s.Start(stream("r2", 1, 43, "rtsp://h/s"), t0)
	if got := s.Start(stream("r3", 0, 44, "/dev/video-like/file.ts"), t0).Commands[0].URI; got != "file:///dev/video-like/file.ts" {
		t.Fatalf("absolute path → %s", got)
	}
	res = s.Interrupt(interrupt("i", 1, 43))
	expectReply(t, res, "analysis_interrupted", "ok", "interrupted and reset")
	expectCommands(t, res, Command{Op: OpStop, Slot: 1})
	expectEvents(t, res)
}

// A live camera reports outages and returns without ending; giving up is a file_error
// that ends the camera as for any other file; another slot's camera is untouched.
func TestLiveStream(t *testing.T) {
	s := New(2)
	s.Start(stream("r1", 0, 42, "rtsp://127.0.0.1:8554/cam"), t0)
	s.Start(start("f", 1, 7, protocol.CameraFile, 70), t0)
	s.FileStarted(0, 42)
	s.FileStarted(1, 70)

	res := s.StreamLost(0, 42, "end of stream", true)
	expectEvents(t, res, "stream_lost:r1:0:42:42")
	if m := wire(t, res.Events[0]); m["reason"] != "end of stream" || m["will_retry"] != true || res.Changed {
		t.Fatalf("stream_lost %v (changed %v)", m, res.Changed)
	}
	// The engine's stream_lost of each failed retry is not sent again.
	if res := s.StreamLost(0, 42, "connection refused", true); res.Ignored == "" || len(res.Events) != 0 {
		t.Fatalf("a retry's stream_lost sent again: %+v", res)
	}
	res = s.StreamResumed(0, 42, 2300, 2, true)
	expectEvents(t, res, "stream_resumed:r1:0:42:42")
	if m := wire(t, res.Events[0]); m["down_ms"] != 2300.0 || m["attempts"] != 2.0 || m["tracker_kept"] != true {
		t.Fatalf("stream_resumed %v", m)
	}
	// Events of another file, or of an idle slot, are stale.
	if res := s.StreamLost(0, 41, "x", true); res.Ignored == "" || len(res.Events) != 0 {
		t.Fatalf("stale stream_lost applied: %+v", res)
	}
	if res := s.StreamResumed(1, 42, 1, 1, true); res.Ignored == "" || len(res.Events) != 0 {
		t.Fatalf("stream_resumed of another slot applied: %+v", res)
	}

	live := &protocol.LiveStatus{State: "reconnecting", FPS: 0, Reconnects: 1}
	prog := func(slot int) (SlotProgress, bool) {
		if slot == 0 {
			return SlotProgress{PositionNS: 5e9, Live: live}, true
		}
		return SlotProgress{PositionNS: 1e9, DurationNS: 2e9}, true
	}
	st := wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "q"}, prog, time.Now()))
	streams := st["streams"].([]any)
	proc := func(i int) map[string]any {
		return streams[i].(map[string]any)["cameras"].([]any)[0].(map[string]any)["files"].(map[string]any)["processing"].([]any)[0].(map[string]any)
	}
	if got, _ := json.Marshal(proc(0)["live"]); string(got) != `{"fps":0,"last_frame_age_ms":null,"reconnects":1,"state":"reconnecting"}` ||
		proc(0)["progress_pct"] != 0.0 {
		t.Fatalf("live camera's processing item %v", proc(0))
	}
	if _, ok := proc(1)["live"]; ok || proc(1)["progress_pct"] != 50.0 {
		t.Fatalf("file camera's processing item %v", proc(1))
	}

	// The next outage is reported again; giving up is reported even after it.
	expectEvents(t, s.StreamLost(0, 42, "end of stream", true), "stream_lost:r1:0:42:42")
	res = s.StreamLost(0, 42, "401 Unauthorized", false)
	expectEvents(t, res, "stream_lost:r1:0:42:42")
	expectCommands(t, res)
	res = s.FileFailed(0, 42, "401 Unauthorized")
	expectEvents(t, res, "file_error:r1:0:42:42", "analysis_complete:r1:0:42 done=0 failed=1")
	expectCommands(t, res, Command{Op: OpReset, Slot: 0})
	if id, ok := s.CurrentFile(1); !ok || id != 70 {
		t.Fatalf("file camera on slot 1: %d %v", id, ok)
	}
}

func TestCameraQueue(t *testing.T) {
	s := New(2)
	s.Start(start("a", 0, 1, protocol.CameraFile, 10), t0)
	res := s.Start(start("b", 0, 2, protocol.CameraFileset, 20), t0)
	expectReply(t, res, "analysis_started", "ok", "busy with camera 1; camera 2 queued at position 1")
	expectCommands(t, res)
	expectEvents(t, res)
	res = s.Start(start("c", 0, 3, protocol.CameraFile, 30), t0)
	expectReply(t, res, "analysis_started", "ok", "queued at position 2")
	// Push to a queued camera is kept for later.
	res = s.Push(push("p", 0, 2, 21, eos), t0)
	if res.Reply != nil || !res.Changed {
		t.Fatalf("push to queued camera: %+v", res)
	}
	expectCommands(t, res)

	res = s.FileDone(0, 10, 1)
	expectEvents(t, res, "file_done:a:0:1:10", "analysis_complete:a:0:1 done=1 failed=0", "processing_started:b:0:2:20")
	expectCommands(t, res, Command{Op: OpReset, Slot: 0}, play(0, 2, 20, true))
	if c := wire(t, res.Events[1]); !strings.Contains(c["message"].(string), "continues with queued camera 2") {
		t.Fatalf("message %v", c["message"])
	}
	res = s.FileDone(0, 20, 1)
	expectEvents(t, res, "file_done:b:0:2:20", "processing_started:p:0:2:21")
	expectCommands(t, res, play(0, 2, 21, false))
	res = s.FileDone(0, 21, 1)
	expectEvents(t, res, "file_done:p:0:2:21", "analysis_complete:p:0:2 done=2 failed=0", "processing_started:c:0:3:30")
	expectCommands(t, res, Command{Op: OpReset, Slot: 0}, play(0, 3, 30, true))
}

func TestStartErrors(t *testing.T) {
	s := New(2)
	s.Start(start("a", 0, 1, protocol.CameraFile, 1), t0)
	s.Start(start("b", 0, 2, protocol.CameraFile, 2), t0)
	before := s.Snapshot()
	tests := []struct {
		name string
		r    *protocol.StartAnalysis
		want string
	}{
		{"running on the same slot", start("x", 0, 1, protocol.CameraFile, 9), "camera 1 is already running on stream 0"},
		{"running elsewhere", start("x", 1, 1, protocol.CameraFile, 9), "camera 1 is already running on stream 0"},
		{"queued", start("x", 1, 2, protocol.CameraFileset), "camera 2 is already queued on stream 0"},
		{"slot out of range", start("x", 2, 3, protocol.CameraFile, 3), "stream_id 2 out of range (0..1)"},
		{"negative slot", start("x", -1, 3, protocol.CameraFile, 3), "stream_id -1 out of range"},
		{"file without init_file", start("x", 1, 3, protocol.CameraFile), `init_file is required for camera_type "file"`},
		{"bad camera type", start("x", 1, 3, "folder", 3), `unknown camera_type "folder"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if rep := s.CheckStart(tt.r); rep == nil || !strings.Contains(rep.ErrorReason, tt.want) {
				t.Fatalf("CheckStart %+v", rep)
			}
			res := s.Start(tt.r, t0)
			m := expectReply(t, res, "analysis_started", "error", tt.want)
			if m["request_id"] != "x" || res.Changed || len(res.Commands) != 0 || len(res.Events) != 0 {
				t.Fatalf("result %+v", res)
			}
			if !reflect.DeepEqual(s.Snapshot(), before) {
				t.Fatal("state changed")
			}
		})
	}
	if rep := s.CheckStart(start("x", 1, 3, protocol.CameraFile, 3)); rep != nil {
		t.Fatalf("valid start refused: %v", rep.ErrorReason)
	}
	e := StartError(start("x", 1, 3, protocol.CameraFile, 3), "cannot create output_dir: permission denied")
	if m := wire(t, e); m["status"] != "error" || m["stream_id"] != 1.0 || m["camera_id"] != 3.0 || m["request_id"] != "x" {
		t.Fatalf("StartError %v", m)
	}
	// A camera can run again once it is finished.
	s.FileDone(0, 1, 1)
	s.FileDone(0, 2, 1)
	expectReply(t, s.Start(start("again", 1, 1, protocol.CameraFile, 1), t0), "analysis_started", "ok", "started")
}

func TestPushErrors(t *testing.T) {
	s := New(3)
	s.Start(start("a", 0, 1, protocol.CameraFileset, 10), t0) // running
	s.Push(push("pa", 0, 1, 11), t0)
	s.Start(start("b", 0, 2, protocol.CameraFileset), t0) // queued
	s.Push(push("pb", 0, 2, 20, eos), t0)
	s.Start(start("c", 1, 3, protocol.CameraFile, 30), t0)
	s.Start(stream("d", 2, 4, "rtsp://h/s"), t0)
	s.Start(start("e", 2, 5, protocol.CameraFileset), t0) // queued behind the stream
	s.Start(start("f", 1, 6, protocol.CameraFileset), t0) // queued, then removed
	s.Interrupt(interrupt("i", 1, 6))
	s.Start(start("g", 0, 7, protocol.CameraFileset), t0) // queued, then given its eos
	s.Interrupt(interrupt("i", 0, 1))                     // camera 1 interrupted; 2 runs
	s.Push(push("pg", 0, 7, eos), t0)
	s.Push(push("p5", 2, 5, 50), t0)
	before := s.Snapshot()

	tests := []struct {
		name string
		r    *protocol.PushFile
		want string
	}{
		{"unknown camera", push("x", 0, 99, 1), "camera 99 has no running or queued analysis on stream 0"},
		{"interrupted camera", push("x", 0, 1, 12), "camera 1 on stream 0 has already been interrupted"},
		{"removed queued camera", push("x", 1, 6, 1), "camera 6 on stream 1 has already been removed from the queue"},
		{"other slot", push("x", 1, 2, 21), "camera 2 is on stream 0, not on stream 1"},
		{"file camera", push("x", 1, 3, 31), `camera 3 has camera_type "file", which takes no push_file`},
		{"videostream camera", push("x", 2, 4, 1), `camera 4 has camera_type "videostream"`},
		{"after eos", push("x", 0, 2, 21), "camera 2 already received its eos item"},
		{"eos twice", push("x", 0, 7, eos), "camera 7 already received its eos item"},
		{"file_id delivered before", push("x", 2, 5, 50, 51), "files[0]: file_id 50 was already delivered for camera 5"},
		{"slot out of range", push("x", 3, 5, 1), "stream_id 3 out of range (0..2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := s.Push(tt.r, t0)
			m := expectReply(t, res, "push_ack", "error", tt.want)
			if m["request_id"] != "x" || res.Changed || len(res.Commands) != 0 || len(res.Events) != 0 {
				t.Fatalf("result %+v", res)
			}
			if !reflect.DeepEqual(s.Snapshot(), before) {
				t.Fatal("state changed")
			}
		})
	}
	// A push whose later item is a duplicate changes nothing, not even its first items.
	res := s.Push(push("x", 2, 5, 52, 50, eos), t0)
	expectReply(t, res, "push_ack", "error", "files[1]: file_id 50 was already delivered")
	if !reflect.DeepEqual(s.Snapshot(), before) {
		t.Fatal("partial push applied")
	}
}

func TestInterrupt(t *testing.T) {
	s := New(3)
	s.Start(start("a", 0, 1, protocol.CameraFileset, 10), t0)
	s.Push(push("pa", 0, 1, 11, 12), t0)
	s.Start(start("b", 0, 2, protocol.CameraFile, 20), t0)
	s.Start(start("c", 0, 3, protocol.CameraFile, 30), t0)
	s.Start(start("d", 1, 4, protocol.CameraFile, 40), t0)

	// Queued camera: removed, nothing else happens.
	res := s.Interrupt(interrupt("i1", 0, 3))
	m := expectReply(t, res, "analysis_interrupted", "ok", "Queued camera 3 removed from stream 0")
	if m["request_id"] != "i1" || m["stream_id"] != 0.0 || m["camera_id"] != 3.0 || !res.Changed {
		t.Fatalf("reply %v", m)
	}
	expectCommands(t, res)
	expectEvents(t, res)

	// Running camera: stop, its files dropped, next camera starts.
	res = s.Interrupt(interrupt("i2", 0, 1))
	expectReply(t, res, "analysis_interrupted", "ok", "Analysis on stream 0 (camera 1) interrupted and reset.")
	expectCommands(t, res, Command{Op: OpStop, Slot: 0}, play(0, 2, 20, true))
	expectEvents(t, res, "processing_started:b:0:2:20")
	// The stopped file's late event is ignored.
	if res = s.FileDone(0, 10, 5); res.Ignored == "" || res.Changed || len(res.Events) != 0 {
		t.Fatalf("stale event applied: %+v", res)
	}

	// Running camera with an empty queue: the slot becomes idle.
	res = s.Interrupt(interrupt("i3", 1, 4))
	expectCommands(t, res, Command{Op: OpStop, Slot: 1})
	if s.slots[1].running != nil {
		t.Fatal("slot 1 still runs")
	}

	before := s.Snapshot()
	for _, tt := range []struct {
		r    *protocol.InterruptAnalysis
		want string
	}{
		{interrupt("x", 1, 4), "stream 1 has no active analysis"},
		{interrupt("x", 2, 9), "stream 2 has no active analysis"},
		{interrupt("x", 0, 9), "camera 9 not found on stream 0"},
		{interrupt("x", 0, 1), "camera 1 not found on stream 0"},
		{interrupt("x", 3, 1), "stream_id 3 out of range (0..2)"},
	} {
		res := s.Interrupt(tt.r)
		if m := expectReply(t, res, "analysis_interrupted", "error", tt.want); m["request_id"] != "x" || res.Changed ||
			len(res.Commands) != 0 {
			t.Fatalf("%v: %+v", tt.want, res)
		}
	}
	s.Start(start("e", 1, 5, protocol.CameraFileset), t0)
	res = s.Interrupt(interrupt("x", 1, 2))
	expectReply(t, res, "analysis_interrupted", "error", "camera 2 not found on stream 1 (it is on stream 0)")
	before = s.Snapshot()
	s.Interrupt(interrupt("x", 1, 2))
	if !reflect.DeepEqual(s.Snapshot(), before) {
		t.Fatal("failed interrupt changed the state")
	}
}

func TestStaleEvents(t *testing.T) {
	s := New(2)
	s.Start(start("a", 0, 1, protocol.CameraFileset), t0)
	s.Start(start("b", 1, 2, protocol.CameraFile, 20), t0)
	before := s.Snapshot()
	for _, tt := range []struct {
		name string
		res  Result
		want string
	}{
		{"slot out of range", s.FileDone(2, 20, 1), "slot 2 out of range (0..1)"},
		{"negative slot", s.FileStarted(-1, 20), "slot -1 out of range"},
		{"wrong file", s.FileFailed(1, 21, "x"), "slot 1 plays file 20, not 21"},
		{"camera without a file", s.FileDone(0, 20, 1), "camera 1 on slot 0 has no file in the engine"},
	} {
		if tt.res.Changed || tt.res.Reply != nil || len(tt.res.Events)+len(tt.res.Commands) != 0 ||
			!strings.Contains(tt.res.Ignored, tt.want) {
			t.Fatalf("%s: %+v", tt.name, tt.res)
		}
	}
	s2 := New(1)
	if res := s2.FileStarted(0, 1); !strings.Contains(res.Ignored, "slot 0 runs no camera") {
		t.Fatalf("%+v", res)
	}
	if !reflect.DeepEqual(s.Snapshot(), before) {
		t.Fatal("stale events changed the state")
	}
}

func TestStatus(t *testing.T) {
	s := New(3)
	s.Start(start("a", 0, 1, protocol.CameraFileset, 10), t0)
	s.Push(push("p", 0, 1, 11, 12, 13), t0)
	s.FileDone(0, 10, 5)
	s.FileFailed(0, 11, "bad")
	s.Start(start("b", 0, 2, protocol.CameraFileset), t0)
	s.Push(push("q", 0, 2, 21), t0)
	s.Start(start("c", 2, 3, protocol.CameraFile, 30), t0)

	prog := func(slot int) (SlotProgress, bool) {
		switch slot {
		case 0:
			return SlotProgress{PositionNS: 1_500_000_000, DurationNS: 4_000_000_000}, true
		case 2:
			return SlotProgress{PositionNS: 5}, true // unknown duration
		}
		return SlotProgress{}, false
	}
	now := time.Date(2025, 7, 28, 12, 0, 3, 0, time.FixedZone("KST", 9*3600))

	// Not started yet: progress 0 whatever the engine says (it may still report the
	// previous file's position).
	all := wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "s0"}, prog, now))
	if p := all["streams"].([]any)[0].(map[string]any)["cameras"].([]any)[0].(map[string]any)["files"].(map[string]any)["processing"].([]any)[0].(map[string]any); p["progress_pct"] != 0.0 {
		t.Fatalf("progress before the file started: %v", p)
	}
	s.FileStarted(0, 12)
	s.FileStarted(2, 30)

	all = wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "s1"}, prog, now))
	want := `{"request_id":"s1","streams":[` +
		`{"cameras":[` +
		`{"camera_id":1,"files":{"completed_count":2,"failed_count":1,"processing":[{"file_id":12,"file_name":"12.mp4","progress_pct":37.5}],` +
		`"queued":[{"file_id":13,"file_name":"13.mp4"}],"queued_count":1},"status":"running"},` +
		`{"camera_id":2,"files":{"completed_count":0,"failed_count":0,"processing":[],"queued":[{"file_id":21,"file_name":"21.mp4"}],"queued_count":1},"status":"queued"}],` +
		`"status":"running","stream_id":0},` +
		`{"cameras":[],"status":"idle","stream_id":1},` +
		`{"cameras":[{"camera_id":3,"files":{"completed_count":0,"failed_count":0,"processing":[{"file_id":30,"file_name":"30.mp4","progress_pct":0}],"queued":[],"queued_count":0},"status":"running"}],` +
		`"status":"running","stream_id":2}],` +
		`"timestamp":"2025-07-28T03:00:03.000+00:00","type":"analysis_status"}`
	all["timestamp"] = "2025-07-28T03:00:03.000+00:00" // the local zone of the test machine varies
	if got, _ := json.Marshal(all); string(got) != want {
		t.Fatalf("whole status\n got  %s\n want %s", got, want)
	}
	if ts, err := time.Parse(time.RFC3339, wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "s"}, nil, now))["timestamp"].(string)); err != nil || !ts.Equal(now) {
		t.Fatalf("timestamp %v %v", ts, err)
	}

	one := wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "s2", StreamID: protocol.Int(0)}, prog, now))
	st := one["stream"].(map[string]any)
	if one["type"] != "analysis_status" || one["request_id"] != "s2" || st["stream_id"] != 0.0 || len(st["cameras"].([]any)) != 2 {
		t.Fatalf("stream status %v", one)
	}
	if _, ok := one["streams"]; ok {
		t.Fatal("stream shape has streams")
	}

	cam := wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "s3", StreamID: protocol.Int(0), CameraID: protocol.Int64(2)}, prog, now))
	c := cam["camera"].(map[string]any)
	if cam["stream_id"] != 0.0 || c["camera_id"] != 2.0 || c["status"] != "queued" || cam["request_id"] != "s3" {
		t.Fatalf("camera status %v", cam)
	}

	for _, tt := range []struct {
		q    *protocol.QueryAnalysisStatus
		want string
	}{
		{&protocol.QueryAnalysisStatus{RequestID: "e", StreamID: protocol.Int(3)}, "stream_id 3 out of range (0..2)"},
		{&protocol.QueryAnalysisStatus{RequestID: "e", StreamID: protocol.Int(1), CameraID: protocol.Int64(2)}, "camera 2 not found on stream 1 (it is on stream 0)"},
		{&protocol.QueryAnalysisStatus{RequestID: "e", StreamID: protocol.Int(0), CameraID: protocol.Int64(77)}, "camera 77 not found on stream 0"},
	} {
		m := wire(t, s.Status(tt.q, prog, now))
		if m["type"] != "analysis_status" || m["status"] != "error" || m["request_id"] != "e" ||
			!strings.Contains(m["error_reason"].(string), tt.want) {
			t.Fatalf("%v", m)
		}
	}
	s.FileDone(2, 30, 1)
	m := wire(t, s.Status(&protocol.QueryAnalysisStatus{RequestID: "e", StreamID: protocol.Int(2), CameraID: protocol.Int64(3)}, prog, now))
	if !strings.Contains(m["error_reason"].(string), "camera 3 not found on stream 2 (it has finished)") {
		t.Fatalf("%v", m)
	}
}

func TestPercent(t *testing.T) {
	for _, tt := range []struct {
		pos, dur int64
		want     float64
	}{{0, 10, 0}, {5, 10, 50}, {1, 3, 33.3}, {2, 3, 66.7}, {20, 10, 100}, {5, 0, 0}, {-1, 10, 0}, {5, -1, 0}} {
		if got := percent(tt.pos, tt.dur); got != tt.want {
			t.Errorf("percent(%d,%d) = %v, want %v", tt.pos, tt.dur, got, tt.want)
		}
	}
}

func TestInFlightAndSnapshot(t *testing.T) {
	s := New(3)
	if got := s.InFlight(); got == nil || len(got) != 0 {
		t.Fatalf("idle InFlight %v", got)
	}
	s.Start(start("a", 0, 1, protocol.CameraFile, 10), t0)
	s.Start(start("b", 2, 2, protocol.CameraFileset), t0)
	s.Start(start("c", 2, 3, protocol.CameraFileset), t0)
	s.Push(push("p", 2, 3, 31, eos), t0)
	want := []InFlight{{StreamID: 0, CameraID: 1, FileID: protocol.Int64(10)}, {StreamID: 2, CameraID: 2}}
	if got := s.InFlight(); !reflect.DeepEqual(got, want) {
		t.Fatalf("InFlight %+v", got)
	}
	b, err := json.Marshal(s.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	var snap Snapshot
	if err := json.Unmarshal(b, &snap); err != nil || !reflect.DeepEqual(snap, s.Snapshot()) {
		t.Fatalf("snapshot round trip: %v\n%s", err, b)
	}
	if len(snap.Streams) != 3 || snap.Streams[0].Running.Current.FileID != 10 || snap.Streams[1].Running != nil ||
		snap.Streams[2].Queued[0].CameraID != 3 || !snap.Streams[2].Queued[0].EOS || snap.Streams[2].Queued[0].Queued[0].RequestID != "p" {
		t.Fatalf("snapshot %s", b)
	}
}

func TestURI(t *testing.T) {
	for in, want := range map[string]string{
		"/v/a b#c?.mp4":          "file:///v/a%20b%23c%3F.mp4",
		"/v/한글.mp4":              "file:///v/%ED%95%9C%EA%B8%80.mp4",
		"rtsp://h:554/s?x=1&y=2": "rtsp://h:554/s?x=1&y=2",
	} {
		if got := toURI(in); got != want {
			t.Errorf("toURI(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLongQueueOrder plays thousands of files through one camera and checks FIFO
// order across the queue's compaction.
func TestLongQueueOrder(t *testing.T) {
	s := New(1)
	s.Start(start("a", 0, 1, protocol.CameraFileset), t0)
	var ids []int64
	for i := int64(1); i <= 2500; i++ {
		ids = append(ids, i)
	}
	s.Push(push("p1", 0, 1, ids[:1500]...), t0)
	next := int64(1)
	for played := 0; played < 2500; played++ {
		if played == 700 {
			s.Push(push("p2", 0, 1, append(ids[1500:], eos)...), t0)
		}
		cur, ok := s.CurrentFile(0)
		if !ok || cur != next {
			t.Fatalf("step %d: current %d %v, want %d", played, cur, ok, next)
		}
		res := s.FileDone(0, cur, 1)
		if played == 2499 {
			expectEvents(t, res, "file_done:p2:0:1:2500", "analysis_complete:p2:0:1 done=2500 failed=0")
		}
		next++
	}
	if s.Busy() {
		t.Fatal("busy at the end")
	}
}

// A snapshot shares the cameras' queues with the state (state.json is encoded off the
// loop); popping, pushing and compacting must leave what it holds untouched. Under
// -race this also proves that encoding it concurrently does not race with the loop.
func TestSnapshotIsStableWhileStateMoves(t *testing.T) {
	s := New(1)
	s.Start(&protocol.StartAnalysis{RequestID: "r", StreamID: 0, CameraID: 1, CameraType: protocol.CameraFileset, OutputDir: "/out"}, t0)
	id := int64(0)
	push := func(n int) {
		p := &protocol.PushFile{RequestID: "p", StreamID: 0, CameraID: 1}
		for i := 0; i < n; i++ {
			id++
			p.Files = append(p.Files, protocol.FileItem{FileType: protocol.FileTypeFile, FileID: id,
				FilePath: fmt.Sprintf("/d/%d.mp4", id), FileName: fmt.Sprintf("%d.mp4", id)})
		}
		if res := s.Push(p, t0); res.Reply != nil {
			t.Fatalf("push rejected: %+v", res.Reply)
		}
	}
	push(3000)
	snap := s.Snapshot()
	want, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.Streams[0].Running.Queued); n != 2999 {
		t.Fatalf("snapshot holds %d queued files, want 2999", n)
	}
	done := make(chan []byte)
	go func() {
		var got []byte
		for i := 0; i < 20; i++ {
			got, _ = json.Marshal(snap)
		}
		done <- got
	}()
	next := func(i int) {
		cur, ok := s.CurrentFile(0)
		if !ok {
			t.Fatalf("no current file after %d files", i)
		}
		s.FileStarted(0, cur)
		s.FileDone(0, cur, 10)
	}
	for i := 0; i < 2000; i++ { // past the 1,500th pop, which compacts the queue
		next(i)
	}
	for i := 0; i < 1200; i++ { // appends, pops to empty, appends again
		if i%100 == 0 {
			push(50)
		}
		next(i)
	}
	if got := <-done; !bytes.Equal(got, want) {
		t.Fatal("the snapshot changed while the state moved on")
	}
	if got, _ := json.Marshal(snap); !bytes.Equal(got, want) {
		t.Fatal("the snapshot changed after the state moved on")
	}
}

// An engine crash fails the files in flight once, holds the slots while the engine
// is down (requests still change the state), then each slot's next file starts with
// a tracker reset.
func TestEngineLostAndBack(t *testing.T) {
	s := New(3)
	s.Start(start("a", 0, 1, protocol.CameraFileset, 10), t0)
	s.Push(push("b", 0, 1, 11, eos), t0)
	s.Start(start("c", 1, 2, protocol.CameraFileset, 20), t0)
	s.FileStarted(0, 10)
	lost := s.EngineLost("engine crashed while playing this file: signal SIGSEGV")
	if len(lost.Events) != 2 || len(lost.Commands) != 0 || !s.held {
		t.Fatalf("EngineLost %+v", lost)
	}
	for _, ev := range lost.Events {
		if fe, ok := ev.(*protocol.FileError); !ok || !strings.Contains(fe.ErrorReason, "SIGSEGV") {
			t.Fatalf("event %#v", ev)
		}
	}
	// While held: a start on an idle slot and a push play nothing.
	if res := s.Start(start("d", 2, 3, protocol.CameraFile, 30), t0); len(res.Commands) != 0 {
		t.Fatalf("start while held %+v", res.Commands)
	}
	if res := s.Push(push("e", 1, 2, 21, eos), t0); len(res.Commands) != 0 {
		t.Fatalf("push while held %+v", res.Commands)
	}
	back := s.EngineBack()
	want := []Command{play(0, 1, 11, true), play(1, 2, 21, true), play(2, 3, 30, true)}
	if !reflect.DeepEqual(back.Commands, want) {
		t.Fatalf("commands\n got %+v\nwant %+v", back.Commands, want)
	}
	resets := 0
	for _, ev := range back.Events {
		if ps, ok := ev.(*protocol.ProcessingStarted); ok && ps.TrackerReset {
			resets++
		}
	}
	if resets != 2 { // camera 3 is new: its reset is the ordinary one
		t.Fatalf("%d tracker_reset events in %+v", resets, back.Events)
	}
	res := s.FileDone(0, 11, 5)
	ac, ok := res.Events[len(res.Events)-1].(*protocol.AnalysisComplete)
	if !ok || ac.FailedCount != 1 || ac.ProcessedCount != 1 {
		t.Fatalf("completion %+v", res.Events)
	}
}

// TestOldestQueued: the arrival of the oldest file waiting on a slot, over the running
// camera's pending files and the queued cameras', as files are played, pushed, failed
// and interrupted; a push of the eos item alone arrives nothing; a restored state
// counts its files from the restore.
func TestOldestQueued(t *testing.T) {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	oldest := func(s *State, slot int) (int, bool) {
		t.Helper()
		tm, ok := s.OldestQueued(slot)
		return int(tm.Sub(t0) / time.Second), ok
	}
	s := New(2)
	if _, ok := oldest(s, 0); ok {
		t.Fatal("an empty slot has a queued file")
	}
	s.Start(start("a", 0, 1, protocol.CameraFileset, 10), at(0)) // 10 plays at once
	if _, ok := oldest(s, 0); ok {
		t.Fatal("the file in the engine counts as queued")
	}
	s.Push(push("p1", 0, 1, 11, 12), at(5))
	s.Push(push("p2", 0, 1, 13), at(9))
	s.Start(start("b", 0, 2, protocol.CameraFile, 20), at(7)) // queued camera
	if got, ok := oldest(s, 0); !ok || got != 5 {
		t.Fatalf("oldest %d %v, want 5 (11, 12)", got, ok)
	}
	s.FileDone(0, 10, 1) // 11 plays; 12 still from p1
	if got, _ := oldest(s, 0); got != 5 {
		t.Fatalf("after one file: %d, want 5", got)
	}
	s.FileFailed(0, 11, "x") // 12 plays: 13 (9) and camera 2's 20 (7) wait
	if got, _ := oldest(s, 0); got != 7 {
		t.Fatalf("after p1: %d, want 7 (camera 2)", got)
	}
	s.Push(push("p3", 0, 1, eos), at(30)) // the eos item alone: nothing arrived
	s.FileDone(0, 12, 1)                  // 13 plays
	if got, _ := oldest(s, 0); got != 7 {
		t.Fatalf("after the eos push: %d, want 7", got)
	}
	s.Interrupt(interrupt("i", 0, 1)) // camera 2 runs: its only file is in the engine
	if _, ok := oldest(s, 0); ok {
		t.Fatal("nothing waits after the interrupt")
	}
	if _, ok := oldest(s, 1); ok {
		t.Fatal("slot 1 has a queued file")
	}

	// Drained, then pushed again: only the new push counts.
	s.Start(start("c", 1, 3, protocol.CameraFileset, 30), at(40))
	s.Push(push("p4", 1, 3, 31), at(41))
	s.FileDone(1, 30, 1) // 31 plays
	s.Push(push("p5", 1, 3, 32), at(50))
	if got, _ := oldest(s, 1); got != 50 {
		t.Fatalf("after draining: %d, want 50", got)
	}

	r, err := Restore(2, s.Snapshot(), at(100))
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := oldest(r, 1); !ok || got != 100 {
		t.Fatalf("restored: %d %v, want 100", got, ok)
	}
	if _, ok := oldest(r, 0); ok {
		t.Fatal("restored slot 0 has a queued file")
	}
}
