package protocol

import (
	"encoding/json"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestEncodeShapes(t *testing.T) {
	tests := []struct {
		msg  Message
		want string // sorted keys, space separated
	}{
		{AppReady{GPUAllocated: []int{0}}, "config_path gpu_allocated instance_id process_id request_id start_time status streams_count type version"},
		{AppReady{Resumed: &Resumed{}}, "config_path gpu_allocated instance_id process_id request_id resumed start_time status streams_count type version"},
		{AnalysisStarted{RequestID: Str("r"), StreamID: Int(0), CameraID: Int64(1), Status: StatusOK, Message: "m"},
			"camera_id message request_id status stream_id type"},
		{AnalysisStarted{Status: StatusError, ErrorReason: "x"}, "camera_id error_reason request_id status stream_id type"},
		{PushAck{Status: StatusError, ErrorReason: "x"}, "camera_id error_reason request_id status stream_id type"},
		{ProcessingStarted{}, "camera_id current_file file_id request_id stream_id type"},
		{FileDone{}, "camera_id file_id frames processed_file request_id stream_id type"},
		{FileError{}, "camera_id current_file error_reason file_id request_id stream_id type"},
		{AnalysisComplete{}, "camera_id failed_count message processed_count request_id status stream_id type"},
		{AnalysisInterrupted{Status: StatusOK, Message: "m"}, "camera_id message request_id status stream_id type"},
		{AppTerminated{Status: StatusOK, Message: "m"}, "message request_id status type"},
		{Metrics{GPUs: []GPUMetrics{}}, "cpu_percent gpu_percent gpus ram_mb request_id status timestamp type vram_mb"},
		{MetricsError{}, "error_reason request_id status timestamp type"},
		{AnalysisStatusAll{}, "request_id streams timestamp type"},
		{AnalysisStatusStream{}, "request_id stream timestamp type"},
		{AnalysisStatusCamera{}, "camera request_id stream_id timestamp type"},
		{AnalysisStatusError{}, "error_reason request_id status timestamp type"},
		{LogEvent{}, "dropped level message source timestamp type"},
		{Logs{Lines: []LogLine{}}, "lines request_id status type"},
		{EngineCrashed{}, "cameras_in_flight exit_code instance_id last_log_lines restart_count restarting restarts_left signal timestamp type"},
		{EngineRestarted{}, "engine_pid instance_id ready_ms restart_count restarts_left timestamp type"},
		{StreamLost{}, "camera_id file_id reason request_id stream_id type will_retry"},
		{StreamResumed{}, "attempts camera_id down_ms file_id request_id stream_id tracker_kept type"},
		{ProcessingStarted{TrackerReset: true}, "camera_id current_file file_id request_id stream_id tracker_reset type"},
		{ErrorMessage{}, "error_code error_reason received_type request_id status type"},
		{ExecuteAck{Status: StatusConfirmed}, "status type"},
		{StartAnalysis{}, "camera_id camera_name camera_path camera_type output_dir request_id stream_id type"},
		{PushFile{Files: []FileItem{{FileType: FileTypeEOS}}}, "camera_id files request_id stream_id type"},
		{QueryAnalysisStatus{}, "request_id type"},
		{InterruptAnalysis{}, "camera_id request_id stream_id type"},
		{TerminateApp{}, "request_id type"},
		{QueryMetrics{}, "request_id type"},
		{QueryLogs{}, "lines request_id type"},
	}
	for _, tt := range tests {
		b := Encode(tt.msg)
		prefix := `{"type":"` + tt.msg.MessageType() + `"`
		if !strings.HasPrefix(string(b), prefix) {
			t.Errorf("%T: %s does not start with %s", tt.msg, b, prefix)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%T: %v", tt.msg, err)
		}
		if got := strings.Join(keys(m), " "); got != tt.want {
			t.Errorf("%T keys:\n got  %s\n want %s", tt.msg, got, tt.want)
		}
		// A pointer encodes the same.
		p := reflect.New(reflect.TypeOf(tt.msg))
		p.Elem().Set(reflect.ValueOf(tt.msg))
		if pb := Encode(p.Interface()); string(pb) != string(b) {
			t.Errorf("%T pointer encodes differently: %s vs %s", tt.msg, pb, b)
		}
	}
}

func TestEncodeDetails(t *testing.T) {
	if got, err := json.Marshal(FileItem{FileType: FileTypeEOS, FileID: 3}); string(got) != `{"file_type":"eos"}` {
		t.Errorf("eos item: %s %v", got, err)
	}
	// No HTML escaping of paths.
	b := Encode(ProcessingStarted{CurrentFile: "/a&b<c>.mp4"})
	if !strings.Contains(string(b), `"/a&b<c>.mp4"`) {
		t.Errorf("escaped: %s", b)
	}
	// Values that cannot be encoded yield a generic error, never a panic or nothing.
	for _, bad := range []any{Metrics{CPUPercent: Float(math.NaN())}, 42, nil, struct{}{}, (*AnalysisStarted)(nil)} {
		var m map[string]any
		if err := json.Unmarshal(Encode(bad), &m); err != nil || m["type"] != "error" || m["error_code"] != CodeInternal {
			t.Errorf("Encode(%#v) = %v (%v)", bad, m, err)
		}
	}
	// Null pointers stay null (metrics without a GPU).
	m := wire(t, Metrics{RequestID: Str("q"), Status: StatusOK, GPUs: []GPUMetrics{}, GPUError: "no driver"})
	if v, ok := m["gpu_percent"]; !ok || v != nil || m["gpu_error"] != "no driver" {
		t.Errorf("metrics: %v", m)
	}
}

func TestTimestamp(t *testing.T) {
	zone := time.FixedZone("KST", 9*3600)
	ts := time.Date(2025, 7, 28, 12, 0, 3, 120e6, zone)
	got := ts.In(zone).Format(TimeLayout)
	if got != "2025-07-28T12:00:03.120+09:00" {
		t.Fatalf("layout: %s", got)
	}
	s := Timestamp(time.Date(2025, 7, 28, 3, 0, 3, 0, time.UTC))
	back, err := time.Parse(time.RFC3339, s)
	if err != nil || !back.Equal(time.Date(2025, 7, 28, 3, 0, 3, 0, time.UTC)) {
		t.Fatalf("Timestamp %s: %v %v", s, back, err)
	}
	if strings.HasSuffix(s, "Z") {
		t.Fatalf("Timestamp %s uses Z, want a numeric offset", s)
	}
}

// TestRoundTrip encodes requests and decodes them back, as a server written with this
// package would send them.
func TestRoundTrip(t *testing.T) {
	reqs := []Request{
		&StartAnalysis{RequestID: "r", StreamID: 1, CameraID: 2, CameraType: CameraFile, CameraPath: "/c", CameraName: "c",
			OutputDir: "/o", InitFile: &FileItem{FileType: FileTypeFile, FileID: 2, FilePath: "/c/a.mp4", FileName: "a.mp4", OutputPath: "/o/a"}},
		&PushFile{RequestID: "p", StreamID: 0, CameraID: 2, FilesCount: Int(1), Files: []FileItem{
			{FileType: FileTypeFile, FileID: 3, FilePath: "/c/b.mp4", FileName: "b.mp4"}, {FileType: FileTypeEOS}}},
		&InterruptAnalysis{RequestID: "i", StreamID: 2, CameraID: 2, Reason: "user_cancelled"},
		&TerminateApp{RequestID: "t", Mode: "graceful"},
		&QueryMetrics{RequestID: "m"},
		&QueryAnalysisStatus{RequestID: "s", StreamID: Int(1), CameraID: Int64(2)},
		&QueryLogs{RequestID: "l", Lines: 5, Level: "info"},
		&ExecuteAck{RequestID: "a", Status: StatusConfirmed, LastSeq: Int64(0)},
	}
	for _, r := range reqs {
		got, rej := Decode(Encode(r), lim3)
		if rej != nil {
			t.Fatalf("%T: %v", r, rej)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("%T round trip:\n got  %#v\n want %#v", r, got, r)
		}
	}
}
