// MessageType and MarshalJSON of every message type (one block per type, same shape).

package protocol

// MessageType returns "start_analysis".
func (StartAnalysis) MessageType() string { return TypeStartAnalysis }

// MarshalJSON encodes the message with its "type" field first.
func (m StartAnalysis) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeStartAnalysis, m.body())
}

func (m StartAnalysis) body() any {
	type plain StartAnalysis
	return plain(m)
}

// MessageType returns "push_file".
func (PushFile) MessageType() string { return TypePushFile }

// MarshalJSON encodes the message with its "type" field first.
func (m PushFile) MarshalJSON() ([]byte, error) { return marshalTyped(TypePushFile, m.body()) }

func (m PushFile) body() any {
	type plain PushFile
	return plain(m)
}

// MessageType returns "interrupt_analysis".
func (InterruptAnalysis) MessageType() string { return TypeInterruptAnalysis }

// MarshalJSON encodes the message with its "type" field first.
func (m InterruptAnalysis) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeInterruptAnalysis, m.body())
}

func (m InterruptAnalysis) body() any {
	type plain InterruptAnalysis
	return plain(m)
}

// MessageType returns "terminate_app".
func (TerminateApp) MessageType() string { return TypeTerminateApp }

// MarshalJSON encodes the message with its "type" field first.
func (m TerminateApp) MarshalJSON() ([]byte, error) { return marshalTyped(TypeTerminateApp, m.body()) }

func (m TerminateApp) body() any {
	type plain TerminateApp
	return plain(m)
}

// MessageType returns "query_metrics".
func (QueryMetrics) MessageType() string { return TypeQueryMetrics }

// MarshalJSON encodes the message with its "type" field first.
func (m QueryMetrics) MarshalJSON() ([]byte, error) { return marshalTyped(TypeQueryMetrics, m.body()) }

func (m QueryMetrics) body() any {
	type plain QueryMetrics
	return plain(m)
}

// MessageType returns "query_analysis_status".
func (QueryAnalysisStatus) MessageType() string { return TypeQueryAnalysisStatus }

// MarshalJSON encodes the message with its "type" field first.
func (m QueryAnalysisStatus) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeQueryAnalysisStatus, m.body())
}

func (m QueryAnalysisStatus) body() any {
	type plain QueryAnalysisStatus
	return plain(m)
}

// MessageType returns "query_logs".
func (QueryLogs) MessageType() string { return TypeQueryLogs }

// MarshalJSON encodes the message with its "type" field first.
func (m QueryLogs) MarshalJSON() ([]byte, error) { return marshalTyped(TypeQueryLogs, m.body()) }

func (m QueryLogs) body() any {
	type plain QueryLogs
	return plain(m)
}

// MessageType returns "execute_ack".
func (ExecuteAck) MessageType() string { return TypeExecuteAck }

// MarshalJSON encodes the message with its "type" field first.
func (m ExecuteAck) MarshalJSON() ([]byte, error) { return marshalTyped(TypeExecuteAck, m.body()) }

func (m ExecuteAck) body() any {
	type plain ExecuteAck
	return plain(m)
}

// MessageType returns "app_ready".
func (AppReady) MessageType() string { return TypeAppReady }

// MarshalJSON encodes the message with its "type" field first.
func (m AppReady) MarshalJSON() ([]byte, error) { return marshalTyped(TypeAppReady, m.body()) }

func (m AppReady) body() any {
	type plain AppReady
	return plain(m)
}

// MessageType returns "analysis_started".
func (AnalysisStarted) MessageType() string { return TypeAnalysisStarted }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisStarted) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisStarted, m.body())
}

func (m AnalysisStarted) body() any {
	type plain AnalysisStarted
	return plain(m)
}

// MessageType returns "push_ack".
func (PushAck) MessageType() string { return TypePushAck }

// MarshalJSON encodes the message with its "type" field first.
func (m PushAck) MarshalJSON() ([]byte, error) { return marshalTyped(TypePushAck, m.body()) }

func (m PushAck) body() any {
	type plain PushAck
	return plain(m)
}

// MessageType returns "processing_started".
func (ProcessingStarted) MessageType() string { return TypeProcessingStarted }

// MarshalJSON encodes the message with its "type" field first.
func (m ProcessingStarted) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeProcessingStarted, m.body())
}

func (m ProcessingStarted) body() any {
	type plain ProcessingStarted
	return plain(m)
}

// MessageType returns "file_done".
func (FileDone) MessageType() string { return TypeFileDone }

// MarshalJSON encodes the message with its "type" field first.
func (m FileDone) MarshalJSON() ([]byte, error) { return marshalTyped(TypeFileDone, m.body()) }

func (m FileDone) body() any {
	type plain FileDone
	return plain(m)
}

// MessageType returns "file_error".
func (FileError) MessageType() string { return TypeFileError }

// MarshalJSON encodes the message with its "type" field first.
func (m FileError) MarshalJSON() ([]byte, error) { return marshalTyped(TypeFileError, m.body()) }

func (m FileError) body() any {
	type plain FileError
	return plain(m)
}

// MessageType returns "analysis_complete".
func (AnalysisComplete) MessageType() string { return TypeAnalysisComplete }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisComplete) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisComplete, m.body())
}

func (m AnalysisComplete) body() any {
	type plain AnalysisComplete
	return plain(m)
}

// MessageType returns "analysis_interrupted".
func (AnalysisInterrupted) MessageType() string { return TypeAnalysisInterrupted }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisInterrupted) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisInterrupted, m.body())
}

func (m AnalysisInterrupted) body() any {
	type plain AnalysisInterrupted
	return plain(m)
}

// MessageType returns "app_terminated".
func (AppTerminated) MessageType() string { return TypeAppTerminated }

// MarshalJSON encodes the message with its "type" field first.
func (m AppTerminated) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAppTerminated, m.body())
}

func (m AppTerminated) body() any {
	type plain AppTerminated
	return plain(m)
}

// MessageType returns "metrics".
func (Metrics) MessageType() string { return TypeMetrics }

// MarshalJSON encodes the message with its "type" field first.
func (m Metrics) MarshalJSON() ([]byte, error) { return marshalTyped(TypeMetrics, m.body()) }

func (m Metrics) body() any {
	type plain Metrics
	return plain(m)
}

// MessageType returns "metrics".
func (MetricsError) MessageType() string { return TypeMetrics }

// MarshalJSON encodes the message with its "type" field first.
func (m MetricsError) MarshalJSON() ([]byte, error) { return marshalTyped(TypeMetrics, m.body()) }

func (m MetricsError) body() any {
	type plain MetricsError
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusAll) MessageType() string { return TypeAnalysisStatus }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisStatusAll) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisStatus, m.body())
}

func (m AnalysisStatusAll) body() any {
	type plain AnalysisStatusAll
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusStream) MessageType() string { return TypeAnalysisStatus }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisStatusStream) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisStatus, m.body())
}

func (m AnalysisStatusStream) body() any {
	type plain AnalysisStatusStream
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusCamera) MessageType() string { return TypeAnalysisStatus }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisStatusCamera) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisStatus, m.body())
}

func (m AnalysisStatusCamera) body() any {
	type plain AnalysisStatusCamera
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusError) MessageType() string { return TypeAnalysisStatus }

// MarshalJSON encodes the message with its "type" field first.
func (m AnalysisStatusError) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeAnalysisStatus, m.body())
}

func (m AnalysisStatusError) body() any {
	type plain AnalysisStatusError
	return plain(m)
}

// MessageType returns "log".
func (LogEvent) MessageType() string { return TypeLog }

// MarshalJSON encodes the message with its "type" field first.
func (m LogEvent) MarshalJSON() ([]byte, error) { return marshalTyped(TypeLog, m.body()) }

func (m LogEvent) body() any {
	type plain LogEvent
	return plain(m)
}

// MessageType returns "logs".
func (Logs) MessageType() string { return TypeLogs }

// MarshalJSON encodes the message with its "type" field first.
func (m Logs) MarshalJSON() ([]byte, error) { return marshalTyped(TypeLogs, m.body()) }

func (m Logs) body() any {
	type plain Logs
	return plain(m)
}

// MessageType returns "engine_crashed".
func (EngineCrashed) MessageType() string { return TypeEngineCrashed }

// MarshalJSON encodes the message with its "type" field first.
func (m EngineCrashed) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeEngineCrashed, m.body())
}

func (m EngineCrashed) body() any {
	type plain EngineCrashed
	return plain(m)
}

// MessageType returns "engine_restarted".
func (EngineRestarted) MessageType() string { return TypeEngineRestarted }

// MarshalJSON encodes the message with its "type" field first.
func (m EngineRestarted) MarshalJSON() ([]byte, error) {
	return marshalTyped(TypeEngineRestarted, m.body())
}

func (m EngineRestarted) body() any {
	type plain EngineRestarted
	return plain(m)
}

// MessageType returns "error".
func (ErrorMessage) MessageType() string { return TypeError }

// MarshalJSON encodes the message with its "type" field first.
func (m ErrorMessage) MarshalJSON() ([]byte, error) { return marshalTyped(TypeError, m.body()) }

func (m ErrorMessage) body() any {
	type plain ErrorMessage
	return plain(m)
}
