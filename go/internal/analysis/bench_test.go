package analysis

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// report adds p50/p99/max latencies in milliseconds to a benchmark.
func report(b *testing.B, d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	ms := func(q float64) float64 {
		i := int(q * float64(len(d)-1))
		return float64(d[i]) / 1e6
	}
	b.ReportMetric(ms(0.5), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(ms(1), "max-ms")
}

// loaded builds 5 slots × perSlot cameras sharing 10,000 queued files, each slot's first
// camera running with a file in the engine.
func loaded(perSlot int) *State {
	const slots, files = 5, 10000
	s := New(slots)
	perCam := files / (slots * perSlot)
	id := int64(1)
	for sl := 0; sl < slots; sl++ {
		for c := 0; c < perSlot; c++ {
			cam := int64(sl*perSlot + c + 1)
			s.Start(&protocol.StartAnalysis{RequestID: "r", StreamID: sl, CameraID: cam, CameraType: protocol.CameraFileset,
				OutputDir: "/out"}, t0)

			p := &protocol.PushFile{RequestID: "p", StreamID: sl, CameraID: cam}
			for f := 0; f < perCam; f++ {
				p.Files = append(p.Files, protocol.FileItem{FileType: protocol.FileTypeFile, FileID: id,
					FilePath: fmt.Sprintf("/data/cam%d/video_%06d.mp4", cam, id), FileName: fmt.Sprintf("video_%06d.mp4", id)})
				id++
			}
			s.Push(p, t0)
		}
		if cur, ok := s.CurrentFile(sl); ok {
			s.FileStarted(sl, cur)
		}
	}
	return s
}

// BenchmarkStatus measures query_analysis_status (whole instance) plus encoding with
// 5 slots × 200 cameras per slot (and 200 in all) and 10,000 queued files in total.
// Target: p99 ≤ 20 ms.
func BenchmarkStatus(b *testing.B) {
	for _, perSlot := range []int{200, 40} {
		b.Run(fmt.Sprintf("cameras=%d", perSlot*5), func(b *testing.B) {
			s := loaded(perSlot)
			prog := func(int) (SlotProgress, bool) { return SlotProgress{PositionNS: 1e9, DurationNS: 4e9}, true }
			q := &protocol.QueryAnalysisStatus{RequestID: "q"}
			const samples = 100
			var d []time.Duration
			size := 0
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < samples; j++ {
					t0 := time.Now()
					out := protocol.Encode(s.Status(q, prog, t0))
					d = append(d, time.Since(t0))
					size = len(out)
				}
			}
			b.StopTimer()
			if size < 10000*40 || !strings.Contains(string(protocol.Encode(s.Status(q, prog, time.Now()))), `"progress_pct":25`) {
				b.Fatalf("status too small (%d bytes) or without progress", size)
			}
			report(b, d)
			b.ReportMetric(float64(size)/1e6, "MB/reply")
		})
	}
}

// pushFrame is a push_file frame with n files and the eos item.
func pushFrame(n int) []byte {
	var sb strings.Builder
	sb.WriteString(`{"type":"push_file","request_id":"big","stream_id":0,"camera_id":1,"files_count":`)
	fmt.Fprintf(&sb, "%d,\"files\":[", n)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&sb, `{"file_type":"file","file_id":%d,"file_path":"/data/cam/video_%06d.mp4","file_name":"video_%06d.mp4","output_path":"/out/cam/video_%06d.txt"},`, i+1, i, i, i)
	}
	sb.WriteString(`{"file_type":"eos"}]}`)
	return []byte(sb.String())
}

// BenchmarkPush10k measures one push_file of 10,000 files for a running camera:
// Decode, Push and encoding of everything it produces. Target: ≤ 50 ms.
func BenchmarkPush10k(b *testing.B) {
	frame := pushFrame(10000)
	lim := protocol.Limits{Streams: 5}
	const samples = 20
	var d []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := 0; j < samples; j++ {
			b.StopTimer()
			s := New(5)
			s.Start(&protocol.StartAnalysis{RequestID: "r", StreamID: 0, CameraID: 1, CameraType: protocol.CameraFileset, OutputDir: "/out"}, t0)
			b.StartTimer()
			t0 := time.Now()
			req, rej := protocol.Decode(frame, lim)
			if rej != nil {
				b.Fatal(rej)
			}
			res := s.Push(req.(*protocol.PushFile), t0)
			if res.Reply != nil {
				protocol.Encode(res.Reply)
			}
			for _, e := range res.Events {
				protocol.Encode(e)
			}
			d = append(d, time.Since(t0))
			if len(res.Commands) != 1 || res.Reply != nil {
				b.Fatalf("push not accepted: %+v", res.Reply)
			}
		}
	}
	b.StopTimer()
	report(b, d)
	b.ReportMetric(float64(len(frame))/1e6, "MB/frame")
}
