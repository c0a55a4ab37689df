package protocol

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"time"
)

// DefaultMaxFilesPerPush is the largest files array accepted in one push_file when
// Limits.MaxFilesPerPush is not set.
const DefaultMaxFilesPerPush = 10000

// MaxFrameBytes is the largest frame accepted from the server: the largest push_file,
// DefaultMaxFilesPerPush items of up to MaxPushItemBytes each (member names, a file_id,
// and file_path, file_name and output_path of about 450 bytes each), plus its envelope.
// A larger frame closes the connection (docs/protocol.md).
const (
	MaxPushItemBytes = 1536
	MaxFrameBytes    = DefaultMaxFilesPerPush*MaxPushItemBytes + 64<<10
)

// Bounds of query_logs.lines.
const (
	DefaultLogLines = 100
	MaxLogLines     = 1000
)

// LogLevels are the values accepted in query_logs.level (zerolog's names).
var LogLevels = []string{"trace", "debug", "info", "warn", "error", "fatal", "panic"}

// Limits are the instance facts requests are checked against.
type Limits struct {
	// Streams is the number of stream slots; stream_id must be below it.
	Streams int
	// MaxFilesPerPush bounds push_file.files (DefaultMaxFilesPerPush when ≤ 0).
	MaxFilesPerPush int
}

// Request is a valid server → app request: *StartAnalysis, *PushFile,
// *InterruptAnalysis, *TerminateApp, *QueryMetrics, *QueryAnalysisStatus, *QueryLogs
// or *ExecuteAck.
type Request interface {
	Message
	// ReqID returns the request_id ("" only for an execute_ack without one).
	ReqID() string
}

// ReqID returns the request_id.
func (r *StartAnalysis) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *PushFile) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *InterruptAnalysis) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *TerminateApp) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *QueryMetrics) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *QueryAnalysisStatus) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *QueryLogs) ReqID() string { return r.RequestID }

// ReqID returns the request_id.
func (r *ExecuteAck) ReqID() string { return r.RequestID }

// Reject is a frame that was refused, with the reply to send for it.
type Reject struct {
	// Type is the frame's "type" when it was a string, else "".
	Type string
	// RequestID is the frame's request_id when it was a string, else nil.
	RequestID *string
	// Code is the error_code of a generic error reply, "" for a typed reply.
	Code string
	// Reply is the message to send: the request's own reply type with status
	// "error", or an ErrorMessage.
	Reply Message

	reason string
}

// Reason returns the error_reason sent back.
func (r *Reject) Reason() string { return r.reason }

// Decode parses and validates one server → app frame. Exactly one of the results is
// non-nil. Unknown fields are ignored; an optional field that is null counts as absent.
func Decode(frame []byte, lim Limits) (Request, *Reject) {
	if lim.MaxFilesPerPush <= 0 {
		lim.MaxFilesPerPush = DefaultMaxFilesPerPush
	}
	fields, ok := parseObject(frame)
	if !ok {
		var v json.RawMessage
		if err := json.Unmarshal(frame, &v); err != nil {
			return nil, generic("", nil, CodeBadJSON, "frame is not valid JSON: "+err.Error())
		}
		return nil, generic("", nil, CodeBadMessage, "frame is not a JSON object")
	}
	o := object{f: fields}
	rawType, ok := o.lookup("type")
	if !ok {
		return nil, generic("", o.echoString("request_id"), CodeBadMessage, `missing field "type"`)
	}
	typ, isStr := unquote(rawType)
	if !isStr {
		return nil, generic("", o.echoString("request_id"), CodeBadMessage,
			fmt.Sprintf(`field "type": expected a string, got %s`, describe(rawType)))
	}
	kind, known := requestKinds[typ]
	if !known {
		return nil, generic(typ, o.echoString("request_id"), CodeUnknownType,
			fmt.Sprintf("unknown message type %q", typ))
	}
	req, err := kind.decode(o, lim)
	if err != nil {
		rid := o.echoString("request_id")
		if kind.reject == nil { // execute_ack has no reply type of its own
			return nil, generic(typ, rid, CodeBadMessage, err.Error())
		}
		e := echo{rid: rid, sid: o.echoStream(), cid: o.echoInt("camera_id"), reason: err.Error()}
		return nil, &Reject{Type: typ, RequestID: rid, reason: e.reason, Reply: kind.reject(e)}
	}
	return req, nil
}

// requestKind is how a server → app request type is decoded, and the error reply it
// gets when it is invalid (nil: the generic error).
type requestKind struct {
	decode func(o object, lim Limits) (Request, error)
	reject func(e echo) Message
}

// echo is what an error reply repeats of an invalid request: the ids that could be
// read, and why it was refused.
type echo struct {
	rid    *string
	sid    *int
	cid    *int64
	reason string
}

func (e echo) camera() cameraReply {
	return cameraReply{RequestID: e.rid, StreamID: e.sid, CameraID: e.cid, Status: StatusError, ErrorReason: e.reason}
}

// requestKinds is every request type the instance takes.
var requestKinds = map[string]requestKind{
	TypeStartAnalysis: {
		func(o object, lim Limits) (Request, error) { return decodeStart(o, lim) },
		func(e echo) Message { return AnalysisStarted(e.camera()) }},
	TypePushFile: {
		func(o object, lim Limits) (Request, error) { return decodePush(o, lim) },
		func(e echo) Message { return PushAck(e.camera()) }},
	TypeInterruptAnalysis: {
		func(o object, lim Limits) (Request, error) { return decodeInterrupt(o, lim) },
		func(e echo) Message { return AnalysisInterrupted(e.camera()) }},
	TypeTerminateApp: {
		func(o object, _ Limits) (Request, error) { return decodeTerminate(o) },
		func(e echo) Message {
			return AppTerminated{RequestID: e.rid, Status: StatusError, ErrorReason: e.reason}
		}},
	TypeQueryMetrics: {
		func(o object, _ Limits) (Request, error) {
			var q QueryMetrics
			var err error
			q.RequestID, err = o.requestID()
			return &q, err
		},
		func(e echo) Message {
			return MetricsError{RequestID: e.rid, Status: StatusError, Timestamp: Timestamp(time.Now()), ErrorReason: e.reason}
		}},
	TypeQueryAnalysisStatus: {
		func(o object, lim Limits) (Request, error) { return decodeStatusQuery(o, lim) },
		func(e echo) Message {
			return AnalysisStatusError{RequestID: e.rid, Timestamp: Timestamp(time.Now()), StreamID: e.sid, CameraID: e.cid,
				Status: StatusError, ErrorReason: e.reason}
		}},
	TypeQueryLogs: {
		func(o object, _ Limits) (Request, error) { return decodeQueryLogs(o) },
		func(e echo) Message {
			return Logs{RequestID: e.rid, Status: StatusError, Lines: []LogLine{}, ErrorReason: e.reason}
		}},
	TypeExecuteAck: {
		func(o object, _ Limits) (Request, error) { return decodeExecuteAck(o) },
		nil},
}

// generic builds a Reject carrying an ErrorMessage.
func generic(typ string, reqID *string, code, reason string) *Reject {
	var rt *string
	if typ != "" {
		rt = Str(typ)
	}
	return &Reject{Type: typ, RequestID: reqID, Code: code, reason: reason, Reply: ErrorMessage{
		RequestID: reqID, Status: StatusError, ErrorCode: code, ErrorReason: reason, ReceivedType: rt,
	}}
}

func decodeStart(o object, lim Limits) (*StartAnalysis, error) {
	var r StartAnalysis
	var err error
	if r.RequestID, r.StreamID, r.CameraID, err = o.target(lim); err != nil {
		return nil, err
	}
	if r.CameraType, _, err = o.str("camera_type", true); err != nil {
		return nil, err
	}
	switch r.CameraType {
	case CameraFile, CameraFileset, CameraVideostream:
	default:
		return nil, fmt.Errorf(`field "camera_type": %q is not one of "file", "fileset", "videostream"`, r.CameraType)
	}
	if r.CameraPath, _, err = o.str("camera_path", false); err != nil {
		return nil, err
	}
	if r.CameraName, _, err = o.str("camera_name", false); err != nil {
		return nil, err
	}
	if r.OutputDir, _, err = o.str("output_dir", true); err != nil {
		return nil, err
	}
	if err = checkAbsPath(o, "output_dir", r.OutputDir); err != nil {
		return nil, err
	}
	raw, present := o.get("init_file")
	if !present {
		if r.CameraType != CameraFileset {
			return nil, fmt.Errorf(`field "init_file": missing (required for camera_type %q)`, r.CameraType)
		}
		return &r, nil
	}
	item, err := decodeItem(raw, "init_file", -1, nil)
	if err != nil {
		return nil, err
	}
	want := FileTypeFile
	if r.CameraType == CameraVideostream {
		want = FileTypeStream
	}
	if item.FileType != want {
		return nil, fmt.Errorf(`field "init_file.file_type": %q does not fit camera_type %q (expected %q)`,
			item.FileType, r.CameraType, want)
	}
	r.InitFile = &item
	return &r, nil
}

func decodePush(o object, lim Limits) (*PushFile, error) {
	var r PushFile
	var err error
	if r.RequestID, r.StreamID, r.CameraID, err = o.target(lim); err != nil {
		return nil, err
	}
	if raw, ok := o.get("files_count"); ok {
		n, err := intField("files_count", raw)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, fmt.Errorf(`field "files_count": %d is negative`, n)
		}
		if n > int64(lim.MaxFilesPerPush) {
			return nil, fmt.Errorf(`field "files_count": %d exceeds the limit of %d files per push_file`, n, lim.MaxFilesPerPush)
		}
		r.FilesCount = Int(int(n))
	}
	raw, ok := o.lookup("files")
	if !ok {
		return nil, fmt.Errorf(`field "files": missing`)
	}
	if kind(raw) != "array" {
		return nil, fmt.Errorf(`field "files": expected an array, got %s`, describe(raw))
	}
	items, ok := parseArray(raw)
	if !ok {
		return nil, fmt.Errorf(`field "files": malformed array`)
	}
	if len(items) == 0 {
		return nil, fmt.Errorf(`field "files": empty array (send at least one file or the eos item)`)
	}
	if len(items) > lim.MaxFilesPerPush+1 { // +1: the eos item does not count
		return nil, fmt.Errorf(`field "files": %d items exceed the limit of %d files per push_file; split them over several push_file messages`,
			len(items), lim.MaxFilesPerPush)
	}
	r.Files = make([]FileItem, 0, len(items))
	seen := make(map[int64]int, len(items))
	files := 0
	var scratch []field
	for i, it := range items {
		item, err := decodeItem(it, "files", i, &scratch)
		if err != nil {
			return nil, err
		}
		if item.FileType == FileTypeEOS {
			if i != len(items)-1 {
				return nil, fmt.Errorf(`field "files[%d]": the eos item must be the last item of files`, i)
			}
		} else {
			if first, dup := seen[item.FileID]; dup {
				return nil, fmt.Errorf(`field "files[%d].file_id": %d appears twice in this push_file (also at files[%d])`, i, item.FileID, first)
			}
			seen[item.FileID] = i
			files++
		}
		r.Files = append(r.Files, item)
	}
	if files > lim.MaxFilesPerPush {
		return nil, fmt.Errorf(`field "files": %d files exceed the limit of %d per push_file; split them over several push_file messages`,
			files, lim.MaxFilesPerPush)
	}
	if r.FilesCount != nil && *r.FilesCount != files {
		return nil, fmt.Errorf(`field "files_count": %d does not match the %d file items in files (eos excluded)`, *r.FilesCount, files)
	}
	return &r, nil
}

func decodeInterrupt(o object, lim Limits) (*InterruptAnalysis, error) {
	var r InterruptAnalysis
	var err error
	if r.RequestID, r.StreamID, r.CameraID, err = o.target(lim); err != nil {
		return nil, err
	}
	if r.Reason, _, err = o.str("reason", false); err != nil {
		return nil, err
	}
	return &r, nil
}

func decodeTerminate(o object) (*TerminateApp, error) {
	var r TerminateApp
	var err error
	if r.RequestID, err = o.requestID(); err != nil {
		return nil, err
	}
	if r.Mode, _, err = o.str("mode", false); err != nil {
		return nil, err
	}
	if r.Mode != "" && r.Mode != "graceful" {
		return nil, fmt.Errorf(`field "mode": %q is not supported (only "graceful")`, r.Mode)
	}
	return &r, nil
}

func decodeStatusQuery(o object, lim Limits) (*QueryAnalysisStatus, error) {
	var r QueryAnalysisStatus
	var err error
	if r.RequestID, err = o.requestID(); err != nil {
		return nil, err
	}
	if _, ok := o.get("stream_id"); ok {
		sid, err := o.streamID(lim)
		if err != nil {
			return nil, err
		}
		r.StreamID = Int(sid)
	}
	if _, ok := o.get("camera_id"); ok {
		if r.StreamID == nil {
			return nil, fmt.Errorf(`field "camera_id": given without stream_id (a camera query needs both)`)
		}
		cid, err := o.id("camera_id")
		if err != nil {
			return nil, err
		}
		r.CameraID = Int64(cid)
	}
	return &r, nil
}

func decodeQueryLogs(o object) (*QueryLogs, error) {
	r := QueryLogs{Lines: DefaultLogLines}
	var err error
	if r.RequestID, err = o.requestID(); err != nil {
		return nil, err
	}
	if raw, ok := o.get("lines"); ok {
		n, err := intField("lines", raw)
		if err != nil {
			return nil, err
		}
		if n < 1 || n > MaxLogLines {
			return nil, fmt.Errorf(`field "lines": %d out of range (1..%d)`, n, MaxLogLines)
		}
		r.Lines = int(n)
	}
	if r.Level, _, err = o.str("level", false); err != nil {
		return nil, err
	}
	if r.Level != "" {
		known := false
		for _, l := range LogLevels {
			known = known || l == r.Level
		}
		if !known {
			return nil, fmt.Errorf(`field "level": %q is not one of %s`, r.Level, strings.Join(LogLevels, ", "))
		}
	}
	return &r, nil
}

func decodeExecuteAck(o object) (*ExecuteAck, error) {
	var r ExecuteAck
	var err error
	// request_id is optional here: the ack answers our app_ready and gets no reply.
	if r.RequestID, _, err = o.str("request_id", false); err != nil {
		return nil, err
	}
	if r.Status, _, err = o.str("status", true); err != nil {
		return nil, err
	}
	if r.Status != StatusConfirmed && r.Status != StatusError {
		return nil, fmt.Errorf(`field "status": %q is not "confirmed" or "error"`, r.Status)
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{"instance_id", &r.InstanceID}, {"timestamp", &r.Timestamp}, {"expected_config", &r.ExpectedConfig},
		{"received_config", &r.ReceivedConfig}, {"error_code", &r.ErrorCode}, {"error_message", &r.ErrorMessage},
	} {
		if *s.dst, _, err = o.str(s.name, false); err != nil {
			return nil, err
		}
	}
	if r.ConfigVerified, err = o.optBool("config_verified"); err != nil {
		return nil, err
	}
	if r.StreamsCountVerified, err = o.optBool("streams_count_verified"); err != nil {
		return nil, err
	}
	if raw, ok := o.get("last_seq"); ok {
		n, err := intField("last_seq", raw)
		if err != nil {
			return nil, err
		}
		if n < 0 {
			return nil, fmt.Errorf(`field "last_seq": %d is negative`, n)
		}
		r.LastSeq = Int64(n)
	}
	return &r, nil
}

// decodeItem validates one init_file (idx -1) or files[idx] entry; scratch, when not
// nil, is reused for the item's members.
func decodeItem(raw []byte, base string, idx int, scratch *[]field) (FileItem, error) {
	var item FileItem
	where := func() string {
		if idx < 0 {
			return base
		}
		return fmt.Sprintf("%s[%d]", base, idx)
	}
	if kind(raw) != "object" {
		return item, fmt.Errorf(`field "%s": expected an object, got %s`, where(), describe(raw))
	}
	var buf []field
	if scratch != nil {
		buf = *scratch
	}
	fields, ok := parseObjectInto(raw, buf)
	if !ok {
		return item, fmt.Errorf(`field "%s": malformed object`, where())
	}
	if scratch != nil {
		*scratch = fields
	}
	o := object{f: fields, base: base, idx: idx}
	var err error
	if item.FileType, _, err = o.str("file_type", true); err != nil {
		return item, err
	}
	switch item.FileType {
	case FileTypeEOS:
		return FileItem{FileType: FileTypeEOS}, nil
	case FileTypeFile, FileTypeStream:
	default:
		return item, fmt.Errorf(`field "%s": %q is not one of "file", "videostream", "eos"`, o.name("file_type"), item.FileType)
	}
	if item.FileID, err = o.id("file_id"); err != nil {
		return item, err
	}
	if item.FilePath, _, err = o.str("file_path", true); err != nil {
		return item, err
	}
	if item.FileType == FileTypeFile {
		err = checkAbsPath(o, "file_path", item.FilePath)
	} else {
		err = checkStreamURI(o, "file_path", item.FilePath)
	}
	if err != nil {
		return item, err
	}
	if item.FileName, _, err = o.str("file_name", false); err != nil {
		return item, err
	}
	if item.FileName == "" {
		item.FileName = item.FilePath
		if item.FileType == FileTypeFile {
			item.FileName = path.Base(item.FilePath)
		}
	}
	if item.OutputPath, _, err = o.str("output_path", false); err != nil {
		return item, err
	}
	if item.OutputPath != "" {
		if err = checkAbsPath(o, "output_path", item.OutputPath); err != nil {
			return item, err
		}
	}
	return item, nil
}

// checkAbsPath requires a non-empty absolute path without NUL bytes in member name
// of o.
func checkAbsPath(o object, name, p string) error {
	if p != "" && p[0] == '/' && strings.IndexByte(p, 0) < 0 {
		return nil
	}
	name = o.name(name)
	switch {
	case p == "":
		return fmt.Errorf(`field "%s": empty path`, name)
	case strings.IndexByte(p, 0) >= 0:
		return fmt.Errorf(`field "%s": path contains a NUL byte`, name)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf(`field "%s": %q is not an absolute path`, name, p)
	}
	return nil
}

// checkStreamURI requires "scheme://…" or an absolute path.
func checkStreamURI(o object, member, u string) error {
	if strings.HasPrefix(u, "/") || u == "" || strings.IndexByte(u, 0) >= 0 {
		return checkAbsPath(o, member, u)
	}
	name := o.name(member)
	i := strings.Index(u, "://")
	if i <= 0 || i+3 == len(u) || !validScheme(u[:i]) {
		return fmt.Errorf(`field "%s": %q is neither a URI with a scheme (rtsp://…, file:///…) nor an absolute path`, name, u)
	}
	return nil
}

func validScheme(s string) bool {
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}
