// Package protocol defines the WebSocket messages exchanged between an instance and
// FastAPI (specification §2.3 plus the extensions of docs/protocol.md), validates the
// server's requests and encodes the instance's messages. It does no I/O.
//
// Encode writes every message's own "type" field first, so a value can never be sent
// with the wrong type. App → server messages carry no "seq": the link
// adds it to the encoded object.
package protocol

import (
	"bytes"
	"encoding/json"
	"time"
)

// Message type names (the "type" field).
const (
	TypeAppReady            = "app_ready"
	TypeExecuteAck          = "execute_ack"
	TypeStartAnalysis       = "start_analysis"
	TypeAnalysisStarted     = "analysis_started"
	TypePushFile            = "push_file"
	TypePushAck             = "push_ack"
	TypeProcessingStarted   = "processing_started"
	TypeFileDone            = "file_done"
	TypeFileError           = "file_error"
	TypeAnalysisComplete    = "analysis_complete"
	TypeInterruptAnalysis   = "interrupt_analysis"
	TypeAnalysisInterrupted = "analysis_interrupted"
	TypeTerminateApp        = "terminate_app"
	TypeAppTerminated       = "app_terminated"
	TypeQueryMetrics        = "query_metrics"
	TypeMetrics             = "metrics"
	TypeQueryAnalysisStatus = "query_analysis_status"
	TypeAnalysisStatus      = "analysis_status"
	TypeQueryLogs           = "query_logs"
	TypeLogs                = "logs"
	TypeLog                 = "log"
	TypeEngineCrashed       = "engine_crashed"
	TypeEngineRestarted     = "engine_restarted"
	TypeStreamLost          = "stream_lost"
	TypeStreamResumed       = "stream_resumed"
	TypeError               = "error"
)

// Values of the "status" field.
const (
	StatusOK        = "ok"
	StatusError     = "error"
	StatusDone      = "done"
	StatusConfirmed = "confirmed"
	StatusRunning   = "running"
	StatusIdle      = "idle"
	StatusQueued    = "queued"
)

// Values of "camera_type" and "file_type".
const (
	CameraFile        = "file"
	CameraFileset     = "fileset"
	CameraVideostream = "videostream"
	FileTypeFile      = "file"
	FileTypeStream    = "videostream"
	FileTypeEOS       = "eos"
)

// Codes of the generic error message.
const (
	CodeBadJSON     = "BAD_JSON"
	CodeBadMessage  = "BAD_MESSAGE"
	CodeUnknownType = "UNKNOWN_TYPE"
	CodeInternal    = "INTERNAL"
)

// TimeLayout is ISO 8601 with milliseconds and a numeric UTC offset (never "Z"),
// as in the specification's examples ("2025-07-28T12:00:03+09:00").
const TimeLayout = "2006-01-02T15:04:05.000-07:00"

// Timestamp formats t in the local zone with TimeLayout.
func Timestamp(t time.Time) string { return t.Local().Format(TimeLayout) }

// Message is implemented by every message type of this package.
type Message interface {
	// MessageType returns the value of the "type" field.
	MessageType() string
}

// typed is a message that can give its fields without the "type" field.
type typed interface {
	Message
	body() any
}

// marshalTyped encodes v (a struct without a "type" field) with "type":typ first and
// without HTML escaping, so paths with '&' or '<' stay readable. The body is encoded
// straight after the type in one buffer: its '{' becomes the ','.
func marshalTyped(typ string, v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(`{"type":"`)
	buf.WriteString(typ) // type names are constants that need no escaping
	buf.WriteByte('"')
	at := buf.Len()
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	out := bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})
	if len(out)-at == 2 { // "{}"
		return append(out[:at], '}'), nil
	}
	out[at] = ','
	return out, nil
}

func marshalPlain(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// Str returns a pointer to s, for optional and echoed fields.
func Str(s string) *string { return &s }

// Int returns a pointer to v, for optional and echoed fields.
func Int(v int) *int { return &v }

// Int64 returns a pointer to v, for optional and echoed fields.
func Int64(v int64) *int64 { return &v }

// Float returns a pointer to v, for optional fields.
func Float(v float64) *float64 { return &v }

// ---------------------------------------------------------------------------
// Server → app requests.

// FileItem is one entry of init_file or push_file.files. An "eos" item has only
// FileType set and encodes as {"file_type":"eos"}.
type FileItem struct {
	FileType   string `json:"file_type"`
	FileID     int64  `json:"file_id"`
	FilePath   string `json:"file_path"`
	FileName   string `json:"file_name"`
	OutputPath string `json:"output_path"`
}

// MarshalJSON writes an eos item as {"file_type":"eos"} and other items in full.
func (f FileItem) MarshalJSON() ([]byte, error) {
	if f.FileType == FileTypeEOS {
		return []byte(`{"file_type":"eos"}`), nil
	}
	type plain FileItem
	return marshalPlain(plain(f))
}

// StartAnalysis asks to analyse a camera on a stream slot (§2.3.2).
type StartAnalysis struct {
	RequestID  string    `json:"request_id"`
	StreamID   int       `json:"stream_id"`
	CameraID   int64     `json:"camera_id"`
	CameraType string    `json:"camera_type"`
	CameraPath string    `json:"camera_path"`
	CameraName string    `json:"camera_name"`
	OutputDir  string    `json:"output_dir"`
	InitFile   *FileItem `json:"init_file,omitempty"`
}

// PushFile delivers more files (and possibly the eos item) for a camera (§2.3.3).
// FilesCount is nil when the request had no files_count.
type PushFile struct {
	RequestID  string     `json:"request_id"`
	StreamID   int        `json:"stream_id"`
	CameraID   int64      `json:"camera_id"`
	FilesCount *int       `json:"files_count,omitempty"`
	Files      []FileItem `json:"files"`
}

// InterruptAnalysis stops a running camera or removes a queued one (§2.3.4).
type InterruptAnalysis struct {
	RequestID string `json:"request_id"`
	StreamID  int    `json:"stream_id"`
	CameraID  int64  `json:"camera_id"`
	Reason    string `json:"reason,omitempty"`
}

// TerminateApp asks the instance to stop everything and exit (§2.3.5). Mode is ""
// or "graceful".
type TerminateApp struct {
	RequestID string `json:"request_id"`
	Mode      string `json:"mode,omitempty"`
}

// QueryMetrics asks for resource usage (§2.3.6).
type QueryMetrics struct {
	RequestID string `json:"request_id"`
}

// QueryAnalysisStatus asks for the analysis state (§2.3.7): all streams when StreamID
// is nil, one stream when only StreamID is set, one camera when both are set.
type QueryAnalysisStatus struct {
	RequestID string `json:"request_id"`
	StreamID  *int   `json:"stream_id,omitempty"`
	CameraID  *int64 `json:"camera_id,omitempty"`
}

// QueryLogs asks for recent log lines (extension). Lines is 1..MaxLogLines
// (DefaultLogLines when absent); Level is the minimum level ("" = all).
type QueryLogs struct {
	RequestID string `json:"request_id"`
	Lines     int    `json:"lines"`
	Level     string `json:"level,omitempty"`
}

// ExecuteAck answers app_ready (§2.3.1). Status is "confirmed" or "error". LastSeq is
// the extension of docs/protocol.md (nil when absent).
type ExecuteAck struct {
	RequestID            string `json:"request_id,omitempty"`
	InstanceID           string `json:"instance_id,omitempty"`
	ConfigVerified       *bool  `json:"config_verified,omitempty"`
	StreamsCountVerified *bool  `json:"streams_count_verified,omitempty"`
	Status               string `json:"status"`
	Timestamp            string `json:"timestamp,omitempty"`
	ExpectedConfig       string `json:"expected_config,omitempty"`
	ReceivedConfig       string `json:"received_config,omitempty"`
	ErrorCode            string `json:"error_code,omitempty"`
	ErrorMessage         string `json:"error_message,omitempty"`
	LastSeq              *int64 `json:"last_seq,omitempty"`
}

// ---------------------------------------------------------------------------
// App → server messages.

// AppReady is the first message on every connection (§2.3.1).
type AppReady struct {
	RequestID    string `json:"request_id"`
	InstanceID   string `json:"instance_id"`
	ConfigPath   string `json:"config_path"`
	ProcessID    int    `json:"process_id"`
	StreamsCount int    `json:"streams_count"`
	Status       string `json:"status"`
	Version      string `json:"version"`
	GPUAllocated []int  `json:"gpu_allocated"`
	StartTime    string `json:"start_time"`
	// Resumed (extension) is set when this process took over the queues of a
	// previous one that did not stop cleanly (--resume).
	Resumed *Resumed `json:"resumed,omitempty"`
}

// Resumed counts what a relaunched process restored: running and queued cameras,
// queued files (the ones in flight are reported as file_error), and the pid of the
// process that left them.
type Resumed struct {
	Cameras int `json:"cameras"`
	Files   int `json:"files"`
	FromPID int `json:"from_pid"`
}

// cameraReply is the shape shared by the replies about one camera of one stream.
// StreamID and CameraID are null in an error reply when the request did not carry
// readable values.
type cameraReply struct {
	RequestID   *string `json:"request_id"`
	StreamID    *int    `json:"stream_id"`
	CameraID    *int64  `json:"camera_id"`
	Status      string  `json:"status"`
	Message     string  `json:"message,omitempty"`
	ErrorReason string  `json:"error_reason,omitempty"`
}

// AnalysisStarted answers start_analysis.
type AnalysisStarted cameraReply

// PushAck answers push_file; it is sent for errors only.
type PushAck cameraReply

// ProcessingStarted says a file was handed to the engine.
type ProcessingStarted struct {
	RequestID   string `json:"request_id"`
	StreamID    int    `json:"stream_id"`
	CameraID    int64  `json:"camera_id"`
	FileID      int64  `json:"file_id"`
	CurrentFile string `json:"current_file"`
	// TrackerReset (extension) is true on the first file of a camera continued after
	// an engine restart: the tracker state died with the engine.
	TrackerReset bool `json:"tracker_reset,omitempty"`
}

// FileDone says a file ended normally. Frames (decoded frames of the file) is an
// extension.
type FileDone struct {
	RequestID     string `json:"request_id"`
	StreamID      int    `json:"stream_id"`
	CameraID      int64  `json:"camera_id"`
	FileID        int64  `json:"file_id"`
	ProcessedFile string `json:"processed_file"`
	Frames        uint64 `json:"frames"`
}

// FileError says a file could not be (fully) played and was skipped (extension).
type FileError struct {
	RequestID   string `json:"request_id"`
	StreamID    int    `json:"stream_id"`
	CameraID    int64  `json:"camera_id"`
	FileID      int64  `json:"file_id"`
	CurrentFile string `json:"current_file"`
	ErrorReason string `json:"error_reason"`
}

// StreamLost says a live camera's stream dropped, stalled or failed (extension).
// WillRetry false is followed by the file's file_error and the camera's end.
type StreamLost struct {
	RequestID string `json:"request_id"`
	StreamID  int    `json:"stream_id"`
	CameraID  int64  `json:"camera_id"`
	FileID    int64  `json:"file_id"`
	Reason    string `json:"reason"`
	WillRetry bool   `json:"will_retry"`
}

// StreamResumed says a live camera's stream delivers frames again after StreamLost
// (extension): DownMS from the outage to the first frame, after Attempts reconnects;
// TrackerKept is false when the outage was long enough to reset the tracker.
type StreamResumed struct {
	RequestID   string `json:"request_id"`
	StreamID    int    `json:"stream_id"`
	CameraID    int64  `json:"camera_id"`
	FileID      int64  `json:"file_id"`
	DownMS      int64  `json:"down_ms"`
	Attempts    int    `json:"attempts"`
	TrackerKept bool   `json:"tracker_kept"`
}

// AnalysisComplete says a camera finished and its slot was reset. FailedCount is an
// extension.
type AnalysisComplete struct {
	RequestID      string `json:"request_id"`
	StreamID       int    `json:"stream_id"`
	CameraID       int64  `json:"camera_id"`
	Status         string `json:"status"`
	ProcessedCount int    `json:"processed_count"`
	FailedCount    int    `json:"failed_count"`
	Message        string `json:"message"`
}

// AnalysisInterrupted answers interrupt_analysis.
type AnalysisInterrupted cameraReply

// AppTerminated answers terminate_app.
type AppTerminated struct {
	RequestID   *string `json:"request_id"`
	Status      string  `json:"status"`
	Message     string  `json:"message,omitempty"`
	ErrorReason string  `json:"error_reason,omitempty"`
}

// GPUMetrics is one GPU of a metrics reply.
type GPUMetrics struct {
	GPUID         int      `json:"gpu_id"`
	Name          string   `json:"name"`
	GPUPercent    *float64 `json:"gpu_percent"`
	VRAMUsedMB    *float64 `json:"vram_used_mb"`
	VRAMTotalMB   *float64 `json:"vram_total_mb"`
	ProcessVRAMMB *float64 `json:"process_vram_mb"`
}

// Metrics answers query_metrics (docs/protocol.md). Nil pointers encode as null.
type Metrics struct {
	RequestID  *string      `json:"request_id"`
	Status     string       `json:"status"`
	Timestamp  string       `json:"timestamp"`
	CPUPercent *float64     `json:"cpu_percent"`
	RAMMB      *float64     `json:"ram_mb"`
	GPUPercent *float64     `json:"gpu_percent"`
	VRAMMB     *float64     `json:"vram_mb"`
	GPUs       []GPUMetrics `json:"gpus"`
	GPUError   string       `json:"gpu_error,omitempty"`
}

// ProcessingFile is a file being played, in analysis_status. Live (extension) is set
// for a live source only.
type ProcessingFile struct {
	FileID      int64       `json:"file_id"`
	FileName    string      `json:"file_name"`
	ProgressPct float64     `json:"progress_pct"`
	Live        *LiveStatus `json:"live,omitempty"`
}

// LiveStatus is a live source's connection, in analysis_status: State is
// "connecting", "playing" or "reconnecting"; LastFrameAgeMS is nil before the first
// frame; Reconnects counts the reconnects since the camera started.
type LiveStatus struct {
	State          string  `json:"state"`
	FPS            float64 `json:"fps"`
	LastFrameAgeMS *int64  `json:"last_frame_age_ms"`
	Reconnects     int     `json:"reconnects"`
}

// QueuedFile is a file waiting in a camera's file queue, in analysis_status.
type QueuedFile struct {
	FileID   int64  `json:"file_id"`
	FileName string `json:"file_name"`
}

// FilesStatus is the "files" object of a camera in analysis_status. CompletedCount
// counts finished files, failed ones included; FailedCount (extension) counts those.
type FilesStatus struct {
	Processing     []ProcessingFile `json:"processing"`
	CompletedCount int              `json:"completed_count"`
	FailedCount    int              `json:"failed_count"`
	QueuedCount    int              `json:"queued_count"`
	Queued         []QueuedFile     `json:"queued"`
}

// CameraStatus is one camera in analysis_status; Status is "running" or "queued".
// TrackerReset (extension) is true while the camera waits to continue after an
// engine loss: its next file starts with a tracker reset.
type CameraStatus struct {
	CameraID     int64       `json:"camera_id"`
	Status       string      `json:"status"`
	Files        FilesStatus `json:"files"`
	TrackerReset bool        `json:"tracker_reset,omitempty"`
}

// StreamStatus is one stream slot in analysis_status; Status is "running", "idle" or
// "error" ("error" while a stall of the slot is being handled). Stalled (extension) is
// set while it is.
type StreamStatus struct {
	StreamID int            `json:"stream_id"`
	Status   string         `json:"status"`
	Cameras  []CameraStatus `json:"cameras"`
	Stalled  *StallStatus   `json:"stalled,omitempty"`
}

// StallStatus is a slot whose file stopped moving frames, in analysis_status, while the
// instance handles it: FileID stalled after Frames frames and none came for StalledMS;
// Action is "stopped" (the file failed, the camera went on and its next file is watched)
// or "restarting" (the engine is restarted as for a hang).
type StallStatus struct {
	FileID    int64  `json:"file_id"`
	Frames    uint64 `json:"frames"`
	StalledMS int64  `json:"stalled_ms"`
	Action    string `json:"action"`
}

// AnalysisStatusAll answers query_analysis_status without stream_id.
type AnalysisStatusAll struct {
	RequestID string         `json:"request_id"`
	Timestamp string         `json:"timestamp"`
	Streams   []StreamStatus `json:"streams"`
}

// AnalysisStatusStream answers query_analysis_status with stream_id only.
type AnalysisStatusStream struct {
	RequestID string       `json:"request_id"`
	Timestamp string       `json:"timestamp"`
	Stream    StreamStatus `json:"stream"`
}

// AnalysisStatusCamera answers query_analysis_status with stream_id and camera_id.
type AnalysisStatusCamera struct {
	RequestID string       `json:"request_id"`
	Timestamp string       `json:"timestamp"`
	StreamID  int          `json:"stream_id"`
	Camera    CameraStatus `json:"camera"`
}

// AnalysisStatusError is the error shape of analysis_status (not in the
// specification, which defines no error reply for this query).
type AnalysisStatusError struct {
	RequestID   *string `json:"request_id"`
	Timestamp   string  `json:"timestamp"`
	StreamID    *int    `json:"stream_id,omitempty"`
	CameraID    *int64  `json:"camera_id,omitempty"`
	Status      string  `json:"status"`
	ErrorReason string  `json:"error_reason"`
}

// LogEvent is a live log line (extension).
type LogEvent struct {
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Source    string `json:"source"`
	Message   string `json:"message"`
	Dropped   int    `json:"dropped"`
}

// LogLine is one line of a logs reply.
type LogLine struct {
	Timestamp string `json:"timestamp"`
	Level     string `json:"level"`
	Source    string `json:"source"`
	Message   string `json:"message"`
}

// Logs answers query_logs (extension). In an error reply Lines is empty and
// ErrorReason says why.
type Logs struct {
	RequestID   *string   `json:"request_id"`
	Status      string    `json:"status"`
	LogPath     string    `json:"log_path,omitempty"`
	Lines       []LogLine `json:"lines"`
	ErrorReason string    `json:"error_reason,omitempty"`
}

// MetricsError is the error shape of a metrics reply.
type MetricsError struct {
	RequestID   *string `json:"request_id"`
	Status      string  `json:"status"`
	Timestamp   string  `json:"timestamp"`
	ErrorReason string  `json:"error_reason"`
}

// CameraInFlight is a running camera in an engine_crashed report; FileID is null when
// the camera had no file in the engine.
type CameraInFlight struct {
	StreamID int    `json:"stream_id"`
	CameraID int64  `json:"camera_id"`
	FileID   *int64 `json:"file_id"`
}

// EngineCrashed reports that the engine exited on its own (extension). ExitCode is
// null when it was killed by a signal; Signal is "" when it exited.
type EngineCrashed struct {
	InstanceID      string           `json:"instance_id"`
	Timestamp       string           `json:"timestamp"`
	ExitCode        *int             `json:"exit_code"`
	Signal          *string          `json:"signal"`
	LastLogLines    []string         `json:"last_log_lines"`
	CamerasInFlight []CameraInFlight `json:"cameras_in_flight"`
	// Reason is set when the instance stopped an engine that failed to answer.
	Reason string `json:"reason,omitempty"`
	// Restarting is true when the instance starts the engine again and keeps its
	// queues; false when it exits (status 3). RestartCount counts the restarts of the
	// window including this one when restarting; RestartsLeft is what the budget
	// has left after it.
	Restarting   bool `json:"restarting"`
	RestartCount int  `json:"restart_count"`
	RestartsLeft int  `json:"restarts_left"`
}

// EngineRestarted says the engine is ready again after a crash (extension): ReadyMS
// is the time from noticing the crash to the new engine's ready.
type EngineRestarted struct {
	InstanceID   string `json:"instance_id"`
	Timestamp    string `json:"timestamp"`
	EnginePID    int    `json:"engine_pid"`
	RestartCount int    `json:"restart_count"`
	RestartsLeft int    `json:"restarts_left"`
	ReadyMS      int64  `json:"ready_ms"`
}

// ErrorMessage is the generic error reply (extension) for a frame that is not JSON,
// not an object, has no string "type", has an unknown type, or is a request without
// a reply type of its own (execute_ack).
type ErrorMessage struct {
	RequestID    *string `json:"request_id"`
	Status       string  `json:"status"`
	ErrorCode    string  `json:"error_code"`
	ErrorReason  string  `json:"error_reason"`
	ReceivedType *string `json:"received_type"`
}
