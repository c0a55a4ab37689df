// MessageType of every message type, and body (its fields without "type", for Encode)
// of every app → server type (one block per type, same shape).

package protocol

// MessageType returns "start_analysis".
func (StartAnalysis) MessageType() string { return TypeStartAnalysis }

// MessageType returns "push_file".
func (PushFile) MessageType() string { return TypePushFile }

// MessageType returns "interrupt_analysis".
func (InterruptAnalysis) MessageType() string { return TypeInterruptAnalysis }

// MessageType returns "terminate_app".
func (TerminateApp) MessageType() string { return TypeTerminateApp }

// MessageType returns "query_metrics".
func (QueryMetrics) MessageType() string { return TypeQueryMetrics }

// MessageType returns "query_analysis_status".
func (QueryAnalysisStatus) MessageType() string { return TypeQueryAnalysisStatus }

// MessageType returns "query_logs".
func (QueryLogs) MessageType() string { return TypeQueryLogs }

// MessageType returns "execute_ack".
func (ExecuteAck) MessageType() string { return TypeExecuteAck }

// MessageType returns "app_ready".
func (AppReady) MessageType() string { return TypeAppReady }

func (m AppReady) body() any {
	type plain AppReady
	return plain(m)
}

// MessageType returns "analysis_started".
func (AnalysisStarted) MessageType() string { return TypeAnalysisStarted }

func (m AnalysisStarted) body() any {
	type plain AnalysisStarted
	return plain(m)
}

// MessageType returns "push_ack".
func (PushAck) MessageType() string { return TypePushAck }

func (m PushAck) body() any {
	type plain PushAck
	return plain(m)
}

// MessageType returns "processing_started".
func (ProcessingStarted) MessageType() string { return TypeProcessingStarted }

func (m ProcessingStarted) body() any {
	type plain ProcessingStarted
	return plain(m)
}

// MessageType returns "file_done".
func (FileDone) MessageType() string { return TypeFileDone }

func (m FileDone) body() any {
	type plain FileDone
	return plain(m)
}

// MessageType returns "file_error".
func (FileError) MessageType() string { return TypeFileError }

func (m FileError) body() any {
	type plain FileError
	return plain(m)
}

// MessageType returns "stream_lost".
func (StreamLost) MessageType() string { return TypeStreamLost }

func (m StreamLost) body() any {
	type plain StreamLost
	return plain(m)
}

// MessageType returns "stream_resumed".
func (StreamResumed) MessageType() string { return TypeStreamResumed }

func (m StreamResumed) body() any {
	type plain StreamResumed
	return plain(m)
}

// MessageType returns "analysis_complete".
func (AnalysisComplete) MessageType() string { return TypeAnalysisComplete }

func (m AnalysisComplete) body() any {
	type plain AnalysisComplete
	return plain(m)
}

// MessageType returns "analysis_interrupted".
func (AnalysisInterrupted) MessageType() string { return TypeAnalysisInterrupted }

func (m AnalysisInterrupted) body() any {
	type plain AnalysisInterrupted
	return plain(m)
}

// MessageType returns "app_terminated".
func (AppTerminated) MessageType() string { return TypeAppTerminated }

func (m AppTerminated) body() any {
	type plain AppTerminated
	return plain(m)
}

// MessageType returns "metrics".
func (Metrics) MessageType() string { return TypeMetrics }

func (m Metrics) body() any {
	type plain Metrics
	return plain(m)
}

// MessageType returns "metrics".
func (MetricsError) MessageType() string { return TypeMetrics }

func (m MetricsError) body() any {
	type plain MetricsError
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusAll) MessageType() string { return TypeAnalysisStatus }

func (m AnalysisStatusAll) body() any {
	type plain AnalysisStatusAll
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusStream) MessageType() string { return TypeAnalysisStatus }

func (m AnalysisStatusStream) body() any {
	type plain AnalysisStatusStream
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusCamera) MessageType() string { return TypeAnalysisStatus }

func (m AnalysisStatusCamera) body() any {
	type plain AnalysisStatusCamera
	return plain(m)
}

// MessageType returns "analysis_status".
func (AnalysisStatusError) MessageType() string { return TypeAnalysisStatus }

func (m AnalysisStatusError) body() any {
	type plain AnalysisStatusError
	return plain(m)
}

// MessageType returns "log".
func (LogEvent) MessageType() string { return TypeLog }

func (m LogEvent) body() any {
	type plain LogEvent
	return plain(m)
}

// MessageType returns "logs".
func (Logs) MessageType() string { return TypeLogs }

func (m Logs) body() any {
	type plain Logs
	return plain(m)
}

// MessageType returns "engine_crashed".
func (EngineCrashed) MessageType() string { return TypeEngineCrashed }

func (m EngineCrashed) body() any {
	type plain EngineCrashed
	return plain(m)
}

// MessageType returns "engine_restarted".
func (EngineRestarted) MessageType() string { return TypeEngineRestarted }

func (m EngineRestarted) body() any {
	type plain EngineRestarted
	return plain(m)
}

// MessageType returns "error".
func (ErrorMessage) MessageType() string { return TypeError }

func (m ErrorMessage) body() any {
	type plain ErrorMessage
	return plain(m)
}
