package protocol

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// FuzzDecode checks that no frame crashes Decode, that exactly one result comes back,
// that every reject carries a valid JSON reply of the right type and that accepted
// requests respect the limits.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"start_analysis","request_id":"r","stream_id":1,"camera_id":5,"camera_type":"file","output_dir":"/o","init_file":{"file_type":"file","file_id":5,"file_path":"/a.mp4"}}`,
		`{"type":"start_analysis","request_id":"r","stream_id":0,"camera_id":5,"camera_type":"videostream","output_dir":"/o","init_file":{"file_type":"videostream","file_id":1,"file_path":"rtsp://h/s"}}`,
		`{"type":"push_file","request_id":"p","stream_id":0,"camera_id":7,"files_count":1,"files":[{"file_type":"file","file_id":1,"file_path":"/a/1.mp4"},{"file_type":"eos"}]}`,
		`{"type":"interrupt_analysis","request_id":"i","stream_id":1,"camera_id":3}`,
		`{"type":"terminate_app","request_id":"t","mode":"graceful"}`,
		`{"type":"query_metrics","request_id":"m"}`,
		`{"type":"query_analysis_status","request_id":"s","stream_id":0,"camera_id":8}`,
		`{"type":"query_logs","request_id":"l","lines":3,"level":"warn"}`,
		`{"type":"execute_ack","status":"confirmed","last_seq":3}`,
		"{\"type\":\"start_analysis\",\"request_id\":\"0\",\"stream_id\":\"\xff\"}",
		`{"type":1}`, `[1, "a\u00e9\n", {"b":[]}, -0.5e+3, true, null]`, `"caf\u00e9 \ud83d\ude00 \xff"`, `{"a":1,"a":2}`, `[]`, `null`, `{"type":"x"}`, `{"a":`, "",
	} {
		f.Add([]byte(s))
	}
	lim := Limits{Streams: 3, MaxFilesPerPush: 50}
	f.Fuzz(func(t *testing.T, frame []byte) {
		checkScanner(t, frame)
		req, rej := Decode(frame, lim)
		if (req == nil) == (rej == nil) {
			t.Fatalf("Decode(%q) = %v, %v", frame, req, rej)
		}
		if rej != nil {
			var m map[string]any
			if err := json.Unmarshal(Encode(rej.Reply), &m); err != nil {
				t.Fatalf("reply is not JSON: %v", err)
			}
			if m["status"] != "error" || rej.Reason() == "" || m["error_reason"] != rej.Reason() {
				t.Fatalf("bad reply %v", m)
			}
			typ, _ := m["type"].(string)
			if typ == "" || typ == "error" && rej.Code == "" {
				t.Fatalf("bad reply type %v", m)
			}
			return
		}
		if req.MessageType() != TypeExecuteAck && req.ReqID() == "" {
			t.Fatalf("accepted without request_id: %q", frame)
		}
		switch r := req.(type) {
		case *StartAnalysis:
			if r.StreamID < 0 || r.StreamID >= lim.Streams || r.CameraID < 0 || !strings.HasPrefix(r.OutputDir, "/") {
				t.Fatalf("accepted %+v", r)
			}
			if r.CameraType != CameraFileset && r.InitFile == nil {
				t.Fatalf("accepted %+v without init_file", r)
			}
		case *PushFile:
			if len(r.Files) == 0 || len(r.Files) > lim.MaxFilesPerPush+1 {
				t.Fatalf("accepted %d files", len(r.Files))
			}
			seen := map[int64]bool{}
			for i, it := range r.Files {
				if it.FileType == FileTypeEOS {
					if i != len(r.Files)-1 {
						t.Fatalf("eos not last")
					}
					continue
				}
				if seen[it.FileID] || it.FileID < 0 || it.FilePath == "" {
					t.Fatalf("accepted item %+v", it)
				}
				seen[it.FileID] = true
			}
		case *QueryAnalysisStatus:
			if r.CameraID != nil && r.StreamID == nil {
				t.Fatalf("camera without stream")
			}
		}
	})
}

// checkScanner compares the scanner with encoding/json on the same input.
func checkScanner(t *testing.T, frame []byte) {
	var m map[string]json.RawMessage
	stdErr := json.Unmarshal(frame, &m)
	fields, ok := parseObject(frame)
	if ok != (stdErr == nil && m != nil) {
		t.Fatalf("parseObject(%q) ok=%v, encoding/json err=%v", frame, ok, stdErr)
	}
	if ok {
		o := object{f: fields}
		for k, v := range m {
			got, found := o.lookup(k)
			if !found || !bytes.Equal(got, v) {
				t.Fatalf("member %q: %q, encoding/json %q", k, got, v)
			}
		}
	}
	var a []json.RawMessage
	stdErr = json.Unmarshal(frame, &a)
	elems, ok := parseArray(frame)
	if ok != (stdErr == nil && a != nil) {
		t.Fatalf("parseArray(%q) ok=%v, encoding/json err=%v", frame, ok, stdErr)
	}
	for i := range elems {
		if !bytes.Equal(elems[i], a[i]) {
			t.Fatalf("element %d: %q, encoding/json %q", i, elems[i], a[i])
		}
	}
	if len(frame) > 1 && frame[0] == '"' && bytes.Equal(trimSpace(frame), frame) {
		var s string
		stdErr = json.Unmarshal(frame, &s)
		got, ok := unquote(frame)
		if stdErr == nil && (!ok || got != s) {
			t.Fatalf("unquote(%q) = %q %v, encoding/json %q", frame, got, ok, s)
		}
	}
}
