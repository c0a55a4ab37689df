package supervisor

import (
	"os"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// appReady builds the handshake message; the link calls it on every connection, from
// its own goroutine, so it reads only immutable fields.
func (l *loop) appReady() []byte {
	l.prom.connections.Add(1)
	gpus := l.d.Hello.GPUIDs
	if gpus == nil {
		gpus = []int{}
	}
	return protocol.Encode(protocol.AppReady{
		RequestID:    uuid.NewString(),
		InstanceID:   l.o.AppID,
		ConfigPath:   l.o.ConfigPath,
		ProcessID:    os.Getpid(),
		StreamsCount: l.d.Hello.Streams,
		Status:       protocol.StatusOK,
		Version:      l.o.Version,
		GPUAllocated: gpus,
		StartTime:    protocol.Timestamp(l.o.Start),
		Resumed:      l.resumed,
	})
}

func (l *loop) metrics(requestID string) protocol.Metrics {
	snap := l.d.Metrics.Sample(os.Getpid(), l.eng.pid())
	m := protocol.Metrics{
		RequestID:  protocol.Str(requestID),
		Status:     protocol.StatusOK,
		Timestamp:  protocol.Timestamp(time.Now()),
		CPUPercent: protocol.Float(snap.CPUPercent),
		RAMMB:      protocol.Float(snap.RAMMB),
		GPUPercent: snap.GPUPercent,
		VRAMMB:     snap.VRAMMB,
		GPUs:       []protocol.GPUMetrics{},
		GPUError:   snap.GPUError,
	}
	for _, g := range snap.GPUs {
		m.GPUs = append(m.GPUs, protocol.GPUMetrics{
			GPUID: g.ID, Name: g.Name, GPUPercent: g.Percent, VRAMUsedMB: g.VRAMUsedMB,
			VRAMTotalMB: g.VRAMTotalMB, ProcessVRAMMB: g.ProcessVRAMMB,
		})
	}
	return m
}

func (l *loop) recentLogs(r *protocol.QueryLogs) protocol.Logs {
	min := zerolog.TraceLevel
	if r.Level != "" {
		if lv, err := zerolog.ParseLevel(r.Level); err == nil {
			min = lv
		}
	}
	lines := l.d.Logs.Recent(r.Lines, min)
	out := protocol.Logs{
		RequestID: protocol.Str(r.RequestID),
		Status:    protocol.StatusOK,
		LogPath:   l.d.Logs.Path(),
		Lines:     make([]protocol.LogLine, 0, len(lines)),
	}
	for _, ln := range lines {
		out.Lines = append(out.Lines, protocol.LogLine{
			Timestamp: protocol.Timestamp(ln.Time), Level: ln.Level, Source: ln.Source, Message: ln.Message,
		})
	}
	return out
}

// crashReport describes an engine that ended with st (lost says why the instance
// killed it, nil when it died on its own); the caller fills in the restart fields.
func (l *loop) crashReport(st engine.ExitStatus, lost error) protocol.EngineCrashed {
	report := protocol.EngineCrashed{
		InstanceID:      l.o.AppID,
		Timestamp:       protocol.Timestamp(time.Now()),
		LastLogLines:    l.d.Logs.LastEngineLines(crashLogLines),
		CamerasInFlight: []protocol.CameraInFlight{},
	}
	if report.LastLogLines == nil {
		report.LastLogLines = []string{}
	}
	if st.Signal != "" {
		report.Signal = protocol.Str(st.Signal)
	} else {
		report.ExitCode = protocol.Int(st.Code)
	}
	for _, c := range l.state.InFlight() {
		report.CamerasInFlight = append(report.CamerasInFlight, protocol.CameraInFlight{
			StreamID: c.StreamID, CameraID: c.CameraID, FileID: c.FileID,
		})
	}
	if lost != nil {
		report.Reason = lost.Error()
	}
	l.log.Error().Str("status", st.String()).Int("cameras_in_flight", len(report.CamerasInFlight)).
		Msg("engine exited unexpectedly")
	return report
}
