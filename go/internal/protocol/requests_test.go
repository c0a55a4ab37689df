package protocol

// The instance never encodes server → app requests; tests do, to build frames with
// Encode.

func (m StartAnalysis) body() any {
	type plain StartAnalysis
	return plain(m)
}

func (m PushFile) body() any {
	type plain PushFile
	return plain(m)
}

func (m InterruptAnalysis) body() any {
	type plain InterruptAnalysis
	return plain(m)
}

func (m TerminateApp) body() any {
	type plain TerminateApp
	return plain(m)
}

func (m QueryMetrics) body() any {
	type plain QueryMetrics
	return plain(m)
}

func (m QueryAnalysisStatus) body() any {
	type plain QueryAnalysisStatus
	return plain(m)
}

func (m QueryLogs) body() any {
	type plain QueryLogs
	return plain(m)
}

func (m ExecuteAck) body() any {
	type plain ExecuteAck
	return plain(m)
}
