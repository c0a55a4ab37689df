package protocol

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"reflect"
	"strings"
	"testing"
)

var lim3 = Limits{Streams: 3}

// wire decodes an encoded message into a generic map, the way a server sees it.
func wire(t *testing.T, m any) map[string]any {
	t.Helper()
	b := Encode(m)
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Encode produced invalid JSON %s: %v", b, err)
	}
	return out
}

func TestDecodeValid(t *testing.T) {
	tests := []struct {
		name  string
		frame string
		want  Request
	}{
		{"start fileset without init_file",
			`{"type":"start_analysis","request_id":"r1","stream_id":2,"camera_id":77,"camera_type":"fileset",
			  "camera_path":"/data/cam","camera_name":"cam","output_dir":"/out/cam","extra":{"x":1}}`,
			&StartAnalysis{RequestID: "r1", StreamID: 2, CameraID: 77, CameraType: "fileset", CameraPath: "/data/cam",
				CameraName: "cam", OutputDir: "/out/cam"}},
		{"start fileset with null init_file",
			`{"type":"start_analysis","request_id":"r1","stream_id":0,"camera_id":1,"camera_type":"fileset","output_dir":"/o","init_file":null}`,
			&StartAnalysis{RequestID: "r1", StreamID: 0, CameraID: 1, CameraType: "fileset", OutputDir: "/o"}},
		{"start file with init_file, file_name defaulted",
			`{"type":"start_analysis","request_id":"r2","stream_id":0,"camera_id":9223372036854775807,"camera_type":"file",
			  "camera_path":"/v/a.mp4","camera_name":"a","output_dir":"/o",
			  "init_file":{"file_type":"file","file_id":5,"file_path":"/v/a b.mp4","output_path":"/o/a.txt"}}`,
			&StartAnalysis{RequestID: "r2", StreamID: 0, CameraID: 9223372036854775807, CameraType: "file",
				CameraPath: "/v/a.mp4", CameraName: "a", OutputDir: "/o",
				InitFile: &FileItem{FileType: "file", FileID: 5, FilePath: "/v/a b.mp4", FileName: "a b.mp4", OutputPath: "/o/a.txt"}}},
		{"start videostream with rtsp URI",
			`{"type":"start_analysis","request_id":"r3","stream_id":1,"camera_id":0,"camera_type":"videostream","output_dir":"/o",
			  "init_file":{"file_type":"videostream","file_id":0,"file_path":"rtsp://cam.local:554/s","file_name":"live"}}`,
			&StartAnalysis{RequestID: "r3", StreamID: 1, CameraID: 0, CameraType: "videostream", OutputDir: "/o",
				InitFile: &FileItem{FileType: "videostream", FileID: 0, FilePath: "rtsp://cam.local:554/s", FileName: "live"}}},
		{"push with eos and files_count",
			`{"type":"push_file","request_id":"p","stream_id":0,"camera_id":7,"files_count":2,"files":[
			  {"file_type":"file","file_id":1,"file_path":"/a/1.mp4","file_name":"1.mp4","output_path":"/o/1.txt"},
			  {"file_type":"file","file_id":2,"file_path":"/a/2.mp4","file_name":"2.mp4","output_path":""},
			  {"file_type":"eos"}]}`,
			&PushFile{RequestID: "p", StreamID: 0, CameraID: 7, FilesCount: Int(2), Files: []FileItem{
				{FileType: "file", FileID: 1, FilePath: "/a/1.mp4", FileName: "1.mp4", OutputPath: "/o/1.txt"},
				{FileType: "file", FileID: 2, FilePath: "/a/2.mp4", FileName: "2.mp4"},
				{FileType: "eos"}}}},
		{"push eos alone, eos extra fields ignored",
			`{"type":"push_file","request_id":"p","stream_id":0,"camera_id":7,"files":[{"file_type":"eos","file_id":"junk"}]}`,
			&PushFile{RequestID: "p", StreamID: 0, CameraID: 7, Files: []FileItem{{FileType: "eos"}}}},
		{"push files_count null",
			`{"type":"push_file","request_id":"p","stream_id":0,"camera_id":7,"files_count":null,"files":[{"file_type":"eos"}]}`,
			&PushFile{RequestID: "p", StreamID: 0, CameraID: 7, Files: []FileItem{{FileType: "eos"}}}},
		{"interrupt",
			`{"type":"interrupt_analysis","request_id":"i","stream_id":1,"camera_id":3,"reason":"user_cancelled"}`,
			&InterruptAnalysis{RequestID: "i", StreamID: 1, CameraID: 3, Reason: "user_cancelled"}},
		{"terminate", `{"type":"terminate_app","request_id":"t"}`, &TerminateApp{RequestID: "t"}},
		{"terminate graceful", `{"type":"terminate_app","request_id":"t","mode":"graceful"}`, &TerminateApp{RequestID: "t", Mode: "graceful"}},
		{"metrics", `{"type":"query_metrics","request_id":"m"}`, &QueryMetrics{RequestID: "m"}},
		{"status all", `{"type":"query_analysis_status","request_id":"s"}`, &QueryAnalysisStatus{RequestID: "s"}},
		{"status all with nulls", `{"type":"query_analysis_status","request_id":"s","stream_id":null,"camera_id":null}`,
			&QueryAnalysisStatus{RequestID: "s"}},
		{"status stream", `{"type":"query_analysis_status","request_id":"s","stream_id":2}`,
			&QueryAnalysisStatus{RequestID: "s", StreamID: Int(2)}},
		{"status camera", `{"type":"query_analysis_status","request_id":"s","stream_id":0,"camera_id":8}`,
			&QueryAnalysisStatus{RequestID: "s", StreamID: Int(0), CameraID: Int64(8)}},
		{"logs default", `{"type":"query_logs","request_id":"l"}`, &QueryLogs{RequestID: "l", Lines: 100}},
		{"logs", `{"type":"query_logs","request_id":"l","lines":1000,"level":"warn"}`, &QueryLogs{RequestID: "l", Lines: 1000, Level: "warn"}},
		{"ack confirmed", `{"type":"execute_ack","request_id":"a","instance_id":"x","config_verified":true,
			"streams_count_verified":true,"status":"confirmed","timestamp":"2025-07-28T12:00:04+09:00","last_seq":41}`,
			&ExecuteAck{RequestID: "a", InstanceID: "x", ConfigVerified: boolp(true), StreamsCountVerified: boolp(true),
				Status: "confirmed", Timestamp: "2025-07-28T12:00:04+09:00", LastSeq: Int64(41)}},
		{"ack error without request_id", `{"type":"execute_ack","status":"error","config_verified":false,
			"expected_config":"/a.txt","received_config":"/b.txt","error_code":"CONFIG_MISMATCH","error_message":"no"}`,
			&ExecuteAck{Status: "error", ConfigVerified: boolp(false), ExpectedConfig: "/a.txt", ReceivedConfig: "/b.txt",
				ErrorCode: "CONFIG_MISMATCH", ErrorMessage: "no"}},
		{"whitespace around", " \n{\"type\":\"query_metrics\",\"request_id\":\"m\"}\n", &QueryMetrics{RequestID: "m"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rej := Decode([]byte(tt.frame), lim3)
			if rej != nil {
				t.Fatalf("rejected: %v", rej)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %#v\nwant %#v", got, tt.want)
			}
			if got.MessageType() != tt.want.MessageType() || got.ReqID() != tt.want.ReqID() {
				t.Fatalf("MessageType/ReqID mismatch")
			}
		})
	}
}

func boolp(b bool) *bool { return &b }

func TestDecodeReject(t *testing.T) {
	// start builds a start_analysis frame with one field replaced ("-" removes it).
	start := func(kv ...string) string {
		f := map[string]string{"type": `"start_analysis"`, "request_id": `"r"`, "stream_id": "1", "camera_id": "5",
			"camera_type": `"file"`, "camera_path": `"/c"`, "camera_name": `"n"`, "output_dir": `"/out"`,
			"init_file": `{"file_type":"file","file_id":5,"file_path":"/v/a.mp4","file_name":"a.mp4","output_path":"/out/a.txt"}`}
		return frame(f, kv...)
	}
	push := func(kv ...string) string {
		f := map[string]string{"type": `"push_file"`, "request_id": `"r"`, "stream_id": "1", "camera_id": "5",
			"files": `[{"file_type":"file","file_id":1,"file_path":"/v/1.mp4"},{"file_type":"eos"}]`}
		return frame(f, kv...)
	}
	item := func(kv ...string) string {
		f := map[string]string{"file_type": `"file"`, "file_id": "1", "file_path": `"/v/1.mp4"`, "file_name": `"1.mp4"`,
			"output_path": `"/o/1.txt"`}
		return push("files", "["+frame(f, kv...)+"]")
	}
	interrupt := func(kv ...string) string {
		f := map[string]string{"type": `"interrupt_analysis"`, "request_id": `"r"`, "stream_id": "1", "camera_id": "5"}
		return frame(f, kv...)
	}
	tests := []struct {
		name      string
		frame     string
		replyType string
		reason    string // substring of error_reason
		code      string // error_code for generic errors
		sid, cid  any    // echoed stream_id / camera_id (nil = JSON null); "absent" = not in reply
	}{
		// Generic errors.
		{"empty frame", ``, "error", "not valid JSON", CodeBadJSON, "absent", "absent"},
		{"garbage", `{"type":`, "error", "not valid JSON", CodeBadJSON, "absent", "absent"},
		{"trailing garbage", `{"type":"query_metrics","request_id":"r"} x`, "error", "not valid JSON", CodeBadJSON, "absent", "absent"},
		{"array", `[1,2]`, "error", "not a JSON object", CodeBadMessage, "absent", "absent"},
		{"null", `null`, "error", "not a JSON object", CodeBadMessage, "absent", "absent"},
		{"string", `"start_analysis"`, "error", "not a JSON object", CodeBadMessage, "absent", "absent"},
		{"no type", `{"request_id":"r"}`, "error", `missing field "type"`, CodeBadMessage, "absent", "absent"},
		{"type number", `{"type":5}`, "error", `"type": expected a string, got a number 5`, CodeBadMessage, "absent", "absent"},
		{"type null", `{"type":null}`, "error", `"type": expected a string, got null`, CodeBadMessage, "absent", "absent"},
		{"unknown type", `{"type":"start_analysys","request_id":"r"}`, "error", `unknown message type "start_analysys"`, CodeUnknownType, "absent", "absent"},
		{"app message sent back", `{"type":"app_ready","request_id":"r"}`, "error", `unknown message type "app_ready"`, CodeUnknownType, "absent", "absent"},
		{"execute_ack bad status", `{"type":"execute_ack","status":"yes"}`, "error", `"status": "yes" is not`, CodeBadMessage, "absent", "absent"},
		{"execute_ack no status", `{"type":"execute_ack","request_id":"a"}`, "error", `"status": missing`, CodeBadMessage, "absent", "absent"},
		{"execute_ack negative last_seq", `{"type":"execute_ack","status":"confirmed","last_seq":-1}`, "error", `"last_seq": -1 is negative`, CodeBadMessage, "absent", "absent"},
		{"execute_ack last_seq string", `{"type":"execute_ack","status":"confirmed","last_seq":"4"}`, "error", `"last_seq": expected an integer`, CodeBadMessage, "absent", "absent"},
		{"execute_ack config_verified string", `{"type":"execute_ack","status":"confirmed","config_verified":"true"}`, "error", `"config_verified": expected a boolean`, CodeBadMessage, "absent", "absent"},

		// start_analysis.
		{"start no request_id", start("request_id", "-"), "analysis_started", `"request_id": missing`, "", 1.0, 5.0},
		{"start request_id number", start("request_id", "12"), "analysis_started", `"request_id": expected a string, got a number 12`, "", 1.0, 5.0},
		{"start request_id empty", start("request_id", `""`), "analysis_started", `"request_id": empty string`, "", 1.0, 5.0},
		{"start no stream_id", start("stream_id", "-"), "analysis_started", `"stream_id": missing`, "", nil, 5.0},
		{"start stream_id string", start("stream_id", `"0"`), "analysis_started", `"stream_id": expected an integer, got a string "0"`, "", nil, 5.0},
		{"start stream_id float", start("stream_id", `1.5`), "analysis_started", `"stream_id": expected an integer, got a number 1.5`, "", nil, 5.0},
		{"start stream_id exponent", start("stream_id", `1e0`), "analysis_started", `"stream_id": expected an integer`, "", nil, 5.0},
		{"start stream_id 1.0", start("stream_id", `1.0`), "analysis_started", `"stream_id": expected an integer`, "", nil, 5.0},
		{"start stream_id null", start("stream_id", `null`), "analysis_started", `"stream_id": expected an integer, got null`, "", nil, 5.0},
		{"start stream_id bool", start("stream_id", `true`), "analysis_started", `"stream_id": expected an integer, got a boolean true`, "", nil, 5.0},
		{"start stream_id negative", start("stream_id", `-1`), "analysis_started", `"stream_id": -1 is negative`, "", -1.0, 5.0},
		{"start stream_id too big", start("stream_id", `3`), "analysis_started", `"stream_id": 3 out of range (this instance has 3 streams: 0..2)`, "", 3.0, 5.0},
		{"start stream_id huge", start("stream_id", `99999999999999999999`), "analysis_started", `does not fit a 64-bit integer`, "", nil, 5.0},
		{"start camera_id negative", start("camera_id", `-5`), "analysis_started", `"camera_id": -5 is negative`, "", 1.0, -5.0},
		{"start camera_id string", start("camera_id", `"5"`), "analysis_started", `"camera_id": expected an integer, got a string "5"`, "", 1.0, nil},
		{"start camera_id object", start("camera_id", `{}`), "analysis_started", `"camera_id": expected an integer, got an object`, "", 1.0, nil},
		{"start camera_type bad", start("camera_type", `"folder"`), "analysis_started", `"camera_type": "folder" is not one of`, "", 1.0, 5.0},
		{"start camera_type missing", start("camera_type", `-`), "analysis_started", `"camera_type": missing`, "", 1.0, 5.0},
		{"start camera_path number", start("camera_path", `1`), "analysis_started", `"camera_path": expected a string`, "", 1.0, 5.0},
		{"start output_dir missing", start("output_dir", `-`), "analysis_started", `"output_dir": missing`, "", 1.0, 5.0},
		{"start output_dir empty", start("output_dir", `""`), "analysis_started", `"output_dir": empty path`, "", 1.0, 5.0},
		{"start output_dir relative", start("output_dir", `"out/x"`), "analysis_started", `"output_dir": "out/x" is not an absolute path`, "", 1.0, 5.0},
		{"start output_dir NUL", start("output_dir", `"/a\u0000b"`), "analysis_started", `"output_dir": path contains a NUL byte`, "", 1.0, 5.0},
		{"start file without init_file", start("init_file", `-`), "analysis_started", `"init_file": missing (required for camera_type "file")`, "", 1.0, 5.0},
		{"start file with null init_file", start("init_file", `null`), "analysis_started", `"init_file": missing`, "", 1.0, 5.0},
		{"start init_file array", start("init_file", `[]`), "analysis_started", `"init_file": expected an object, got an array`, "", 1.0, 5.0},
		{"start init_file eos", start("init_file", `{"file_type":"eos"}`), "analysis_started", `"init_file.file_type": "eos" does not fit`, "", 1.0, 5.0},
		{"start init_file videostream for file camera", start("init_file", `{"file_type":"videostream","file_id":1,"file_path":"rtsp://h/s"}`),
			"analysis_started", `"init_file.file_type": "videostream" does not fit camera_type "file"`, "", 1.0, 5.0},
		{"start init_file relative path", start("init_file", `{"file_type":"file","file_id":1,"file_path":"a.mp4"}`),
			"analysis_started", `"init_file.file_path": "a.mp4" is not an absolute path`, "", 1.0, 5.0},
		{"start init_file empty path", start("init_file", `{"file_type":"file","file_id":1,"file_path":""}`),
			"analysis_started", `"init_file.file_path": empty path`, "", 1.0, 5.0},
		{"start init_file no file_id", start("init_file", `{"file_type":"file","file_path":"/a.mp4"}`),
			"analysis_started", `"init_file.file_id": missing`, "", 1.0, 5.0},
		{"start init_file file_id float", start("init_file", `{"file_type":"file","file_id":2.5,"file_path":"/a.mp4"}`),
			"analysis_started", `"init_file.file_id": expected an integer, got a number 2.5`, "", 1.0, 5.0},
		{"start init_file relative output_path", start("init_file", `{"file_type":"file","file_id":1,"file_path":"/a.mp4","output_path":"o.txt"}`),
			"analysis_started", `"init_file.output_path": "o.txt" is not an absolute path`, "", 1.0, 5.0},
		{"start init_file bad file_type", start("init_file", `{"file_type":"dir","file_id":1,"file_path":"/a"}`),
			"analysis_started", `"init_file.file_type": "dir" is not one of`, "", 1.0, 5.0},
		{"start videostream with file item",
			start("camera_type", `"videostream"`, "init_file", `{"file_type":"file","file_id":1,"file_path":"/a.mp4"}`),
			"analysis_started", `"init_file.file_type": "file" does not fit camera_type "videostream"`, "", 1.0, 5.0},
		{"start videostream without scheme",
			start("camera_type", `"videostream"`, "init_file", `{"file_type":"videostream","file_id":1,"file_path":"cam.local/s"}`),
			"analysis_started", `is neither a URI with a scheme`, "", 1.0, 5.0},
		{"start videostream bad scheme",
			start("camera_type", `"videostream"`, "init_file", `{"file_type":"videostream","file_id":1,"file_path":"1tp://x"}`),
			"analysis_started", `is neither a URI with a scheme`, "", 1.0, 5.0},
		{"start videostream scheme only",
			start("camera_type", `"videostream"`, "init_file", `{"file_type":"videostream","file_id":1,"file_path":"rtsp://"}`),
			"analysis_started", `is neither a URI with a scheme`, "", 1.0, 5.0},

		// push_file.
		{"push no files", push("files", "-"), "push_ack", `"files": missing`, "", 1.0, 5.0},
		{"push files null", push("files", "null"), "push_ack", `"files": expected an array, got null`, "", 1.0, 5.0},
		{"push files object", push("files", "{}"), "push_ack", `"files": expected an array, got an object`, "", 1.0, 5.0},
		{"push files empty", push("files", "[]"), "push_ack", `"files": empty array`, "", 1.0, 5.0},
		{"push stream_id out of range", push("stream_id", "7"), "push_ack", `"stream_id": 7 out of range`, "", 7.0, 5.0},
		{"push camera_id missing", push("camera_id", "-"), "push_ack", `"camera_id": missing`, "", 1.0, nil},
		{"push files_count mismatch", push("files_count", "2"), "push_ack", `"files_count": 2 does not match the 1 file items`, "", 1.0, 5.0},
		{"push files_count counts eos", push("files_count", "2"), "push_ack", `(eos excluded)`, "", 1.0, 5.0},
		{"push files_count string", push("files_count", `"1"`), "push_ack", `"files_count": expected an integer`, "", 1.0, 5.0},
		{"push files_count negative", push("files_count", `-1`), "push_ack", `"files_count": -1 is negative`, "", 1.0, 5.0},
		{"push eos not last", push("files", `[{"file_type":"eos"},{"file_type":"file","file_id":1,"file_path":"/v/1.mp4"}]`),
			"push_ack", `"files[0]": the eos item must be the last item`, "", 1.0, 5.0},
		{"push two eos", push("files", `[{"file_type":"eos"},{"file_type":"eos"}]`), "push_ack", `"files[0]": the eos item must be the last`, "", 1.0, 5.0},
		{"push duplicate file_id", push("files", `[{"file_type":"file","file_id":4,"file_path":"/v/1.mp4"},{"file_type":"file","file_id":4,"file_path":"/v/2.mp4"}]`),
			"push_ack", `"files[1].file_id": 4 appears twice in this push_file (also at files[0])`, "", 1.0, 5.0},
		{"push item not object", push("files", `["/v/1.mp4"]`), "push_ack", `"files[0]": expected an object, got a string "/v/1.mp4"`, "", 1.0, 5.0},
		{"push item no file_type", item("file_type", "-"), "push_ack", `"files[0].file_type": missing`, "", 1.0, 5.0},
		{"push item file_type null", item("file_type", "null"), "push_ack", `"files[0].file_type": expected a string, got null`, "", 1.0, 5.0},
		{"push item file_id negative", item("file_id", "-3"), "push_ack", `"files[0].file_id": -3 is negative`, "", 1.0, 5.0},
		{"push item file_id string", item("file_id", `"3"`), "push_ack", `"files[0].file_id": expected an integer, got a string "3"`, "", 1.0, 5.0},
		{"push item path relative", item("file_path", `"v/1.mp4"`), "push_ack", `"files[0].file_path": "v/1.mp4" is not an absolute path`, "", 1.0, 5.0},
		{"push item path URI for file", item("file_path", `"file:///v/1.mp4"`), "push_ack", `"files[0].file_path": "file:///v/1.mp4" is not an absolute path`, "", 1.0, 5.0},
		{"push item path missing", item("file_path", "-"), "push_ack", `"files[0].file_path": missing`, "", 1.0, 5.0},
		{"push item file_name number", item("file_name", "1"), "push_ack", `"files[0].file_name": expected a string`, "", 1.0, 5.0},
		{"push item output_path relative", item("output_path", `"o.txt"`), "push_ack", `"files[0].output_path": "o.txt" is not an absolute path`, "", 1.0, 5.0},

		// interrupt_analysis.
		{"interrupt no camera_id", interrupt("camera_id", "-"), "analysis_interrupted", `"camera_id": missing`, "", 1.0, nil},
		{"interrupt stream_id string", interrupt("stream_id", `"1"`), "analysis_interrupted", `"stream_id": expected an integer`, "", nil, 5.0},
		{"interrupt reason number", interrupt("reason", `1`), "analysis_interrupted", `"reason": expected a string`, "", 1.0, 5.0},
		{"interrupt no request_id", interrupt("request_id", `-`), "analysis_interrupted", `"request_id": missing`, "", 1.0, 5.0},

		// Others.
		{"terminate no request_id", `{"type":"terminate_app"}`, "app_terminated", `"request_id": missing`, "", "absent", "absent"},
		{"terminate bad mode", `{"type":"terminate_app","request_id":"t","mode":"now"}`, "app_terminated", `"mode": "now" is not supported`, "", "absent", "absent"},
		{"terminate mode number", `{"type":"terminate_app","request_id":"t","mode":1}`, "app_terminated", `"mode": expected a string`, "", "absent", "absent"},
		{"metrics request_id null", `{"type":"query_metrics","request_id":null}`, "metrics", `"request_id": expected a string, got null`, "", "absent", "absent"},
		{"status stream out of range", `{"type":"query_analysis_status","request_id":"s","stream_id":3}`, "analysis_status", `"stream_id": 3 out of range`, "", 3.0, "absent"},
		{"status stream string", `{"type":"query_analysis_status","request_id":"s","stream_id":"0"}`, "analysis_status", `"stream_id": expected an integer`, "", "absent", "absent"},
		{"status camera without stream", `{"type":"query_analysis_status","request_id":"s","camera_id":4}`, "analysis_status", `"camera_id": given without stream_id`, "", "absent", 4.0},
		{"status camera negative", `{"type":"query_analysis_status","request_id":"s","stream_id":0,"camera_id":-4}`, "analysis_status", `"camera_id": -4 is negative`, "", 0.0, -4.0},
		{"logs lines zero", `{"type":"query_logs","request_id":"l","lines":0}`, "logs", `"lines": 0 out of range (1..1000)`, "", "absent", "absent"},
		{"logs lines too many", `{"type":"query_logs","request_id":"l","lines":1001}`, "logs", `"lines": 1001 out of range`, "", "absent", "absent"},
		{"logs bad level", `{"type":"query_logs","request_id":"l","level":"loud"}`, "logs", `"level": "loud" is not one of`, "", "absent", "absent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, rej := Decode([]byte(tt.frame), lim3)
			if rej == nil {
				t.Fatalf("accepted %#v", req)
			}
			if req != nil {
				t.Fatalf("both a request and a reject")
			}
			m := wire(t, rej.Reply)
			if m["type"] != tt.replyType {
				t.Fatalf("reply type %v, want %s: %v", m["type"], tt.replyType, m)
			}
			if m["status"] != "error" {
				t.Fatalf("status %v", m["status"])
			}
			reason, _ := m["error_reason"].(string)
			if !strings.Contains(reason, tt.reason) || reason != rej.Reason() {
				t.Fatalf("error_reason %q, want it to contain %q (Reason() %q)", reason, tt.reason, rej.Reason())
			}
			if tt.code != "" && (m["error_code"] != tt.code || rej.Code != tt.code) {
				t.Fatalf("error_code %v, want %s", m["error_code"], tt.code)
			}
			if _, ok := m["request_id"]; !ok {
				t.Fatalf("no request_id key: %v", m)
			}
			checkEcho(t, m, "stream_id", tt.sid)
			checkEcho(t, m, "camera_id", tt.cid)
		})
	}
}

func checkEcho(t *testing.T, m map[string]any, key string, want any) {
	t.Helper()
	got, ok := m[key]
	if want == "absent" {
		if ok {
			t.Fatalf("%s present (%v), want absent", key, got)
		}
		return
	}
	if !ok || got != want {
		t.Fatalf("%s = %v (present %v), want %v", key, got, ok, want)
	}
}

// frame builds a JSON object from raw field values; kv are field, value pairs that
// replace fields (value "-" drops the field).
func frame(f map[string]string, kv ...string) string {
	g := make(map[string]string, len(f)+1)
	for k, v := range f {
		g[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "-" {
			delete(g, kv[i])
		} else {
			g[kv[i]] = kv[i+1]
		}
	}
	parts := make([]string, 0, len(g))
	for k, v := range g {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestDecodeEchoesRequestID(t *testing.T) {
	_, rej := Decode([]byte(`{"type":"push_file","request_id":"abc","stream_id":0,"camera_id":1,"files":[]}`), lim3)
	if rej == nil || rej.RequestID == nil || *rej.RequestID != "abc" || rej.Type != TypePushFile {
		t.Fatalf("reject %+v", rej)
	}
	if m := wire(t, rej.Reply); m["request_id"] != "abc" {
		t.Fatalf("request_id %v", m["request_id"])
	}
	_, rej = Decode([]byte(`{"type":"nope","request_id":"xyz"}`), lim3)
	m := wire(t, rej.Reply)
	if m["request_id"] != "xyz" || m["received_type"] != "nope" {
		t.Fatalf("generic error %v", m)
	}
	_, rej = Decode([]byte(`{"type":"nope","request_id":7}`), lim3)
	if m := wire(t, rej.Reply); m["request_id"] != nil {
		t.Fatalf("non-string request_id echoed: %v", m)
	}
	_, rej = Decode([]byte(`not json`), lim3)
	if m := wire(t, rej.Reply); m["request_id"] != nil || m["received_type"] != nil {
		t.Fatalf("generic error %v", m)
	}
}

// pushFrame builds a push_file with n files (and an eos item when eos).
func pushFrame(n int, eos bool) []byte {
	var b strings.Builder
	b.WriteString(`{"type":"push_file","request_id":"big","stream_id":0,"camera_id":1,"files":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"file_type":"file","file_id":%d,"file_path":"/data/cam/video_%06d.mp4","file_name":"video_%06d.mp4","output_path":"/out/cam/video_%06d.txt"}`, i+1, i, i, i)
	}
	if eos {
		b.WriteString(`,{"file_type":"eos"}`)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

func TestDecodePushLimits(t *testing.T) {
	req, rej := Decode(pushFrame(10000, true), lim3)
	if rej != nil {
		t.Fatalf("10,000 files + eos rejected: %v", rej)
	}
	if p := req.(*PushFile); len(p.Files) != 10001 || p.Files[10000].FileType != FileTypeEOS {
		t.Fatalf("decoded %d items", len(p.Files))
	}
	_, rej = Decode(pushFrame(10001, false), lim3)
	if rej == nil || !strings.Contains(rej.Reason(), "10001 files exceed the limit of 10000 per push_file") {
		t.Fatalf("10,001 files: %v", rej)
	}
	_, rej = Decode(pushFrame(100000, true), lim3)
	if rej == nil || rej.Type != TypePushFile || !strings.Contains(rej.Reason(), "100001 items exceed the limit of 10000") {
		t.Fatalf("100,000 files: %v", rej)
	}
	small := Limits{Streams: 1, MaxFilesPerPush: 2}
	if _, rej = Decode(pushFrame(2, true), small); rej != nil {
		t.Fatalf("2 files + eos with limit 2: %v", rej)
	}
	if _, rej = Decode(pushFrame(3, false), small); rej == nil || !strings.Contains(rej.Reason(), "limit of 2") {
		t.Fatalf("3 files with limit 2: %v", rej)
	}
}

func TestDecodeNoStreams(t *testing.T) {
	_, rej := Decode([]byte(`{"type":"interrupt_analysis","request_id":"r","stream_id":0,"camera_id":1}`), Limits{})
	if rej == nil || !strings.Contains(rej.Reason(), "has no streams") {
		t.Fatalf("%v", rej)
	}
}

func TestDecodeDeepNesting(t *testing.T) {
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	for _, f := range []string{deep, `{"type":"query_metrics","request_id":"r","x":` + deep + `}`} {
		_, rej := Decode([]byte(f), lim3)
		if rej == nil {
			t.Fatalf("deep nesting accepted")
		}
	}
}

// special8 must agree with the byte table on every word: each byte value at each
// position in a plain word, and random words.
func TestSpecial8MatchesTable(t *testing.T) {
	slow := func(x uint64) bool {
		for i := 0; i < 8; i++ {
			if strSpecial[byte(x>>(8*i))] {
				return true
			}
		}
		return false
	}
	const plain = 0x6161616161616161 // "aaaaaaaa"
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			x := plain&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
			if special8(x) != slow(x) {
				t.Fatalf("byte %#x at %d: special8 %v", c, pos, special8(x))
			}
		}
	}
	r := rand.New(rand.NewSource(2))
	for i := 0; i < 1_000_000; i++ {
		x := r.Uint64()
		if i%2 == 0 { // mostly printable, like real paths
			x = x&0x3f3f3f3f3f3f3f3f | 0x4040404040404040
			x ^= uint64(r.Intn(256)) << (8 * r.Intn(8))
		}
		if special8(x) != slow(x) {
			t.Fatalf("%#016x: special8 %v", x, special8(x))
		}
	}
}
