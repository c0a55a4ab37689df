package protocol

import (
	"bytes"
	"math"
	"math/rand"
	"strconv"
	"strings"
	"testing"
)

// viaReflection encodes msg the way every other message is encoded.
func viaReflection(t *testing.T, msg typed) []byte {
	t.Helper()
	b, err := marshalTyped(msg.MessageType(), msg.body())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var oddStrings = []string{
	"", "video_000001.mp4", "카메라_01.mp4", "a\"b", `back\slash`, "tab\tnew\nline", "\x00\x1f",
	"<html>&amp;", "bad utf8 \xff\xfe", "line sep \u2028 para \u2029", "emoji 😀", "/", "\u007f",
	strings.Repeat("x", 300),
}

func randString(r *rand.Rand) string {
	if r.Intn(3) == 0 {
		return oddStrings[r.Intn(len(oddStrings))]
	}
	n := r.Intn(12)
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Intn(256))
	}
	return string(b)
}

func randFloat(r *rand.Rand) float64 {
	return []float64{0, 25, 33.3, 100, 1e-7, 5e-324, 1e21, 123456789.5, -0.5, math.Round(r.Float64()*1000) / 10}[r.Intn(10)]
}

func randCamera(r *rand.Rand) CameraStatus {
	c := CameraStatus{CameraID: r.Int63n(1<<40) - 5, Status: randString(r), TrackerReset: r.Intn(4) == 0}
	f := &c.Files
	if r.Intn(5) > 0 {
		f.Processing = []ProcessingFile{}
		for i := r.Intn(3); i > 0; i-- {
			p := ProcessingFile{FileID: r.Int63(), FileName: randString(r), ProgressPct: randFloat(r)}
			if r.Intn(3) == 0 {
				p.Live = &LiveStatus{State: randString(r), FPS: randFloat(r), Reconnects: r.Intn(100)}
				if r.Intn(2) == 0 {
					p.Live.LastFrameAgeMS = Int64(r.Int63() - r.Int63())
				}
			}
			f.Processing = append(f.Processing, p)
		}
	}
	f.CompletedCount, f.FailedCount, f.QueuedCount = r.Intn(1000), r.Intn(10), r.Intn(10000)
	if r.Intn(5) > 0 {
		f.Queued = make([]QueuedFile, r.Intn(6))
		for i := range f.Queued {
			f.Queued[i] = QueuedFile{FileID: r.Int63() - r.Int63(), FileName: randString(r)}
		}
	}
	return c
}

func randStream(r *rand.Rand) StreamStatus {
	s := StreamStatus{StreamID: r.Intn(8), Status: randString(r)}
	if r.Intn(3) == 0 {
		s.Stalled = &StallStatus{FileID: r.Int63() - r.Int63(), Frames: r.Uint64(), StalledMS: r.Int63(),
			Action: randString(r)}
	}
	if r.Intn(5) > 0 {
		s.Cameras = make([]CameraStatus, r.Intn(4))
		for i := range s.Cameras {
			s.Cameras[i] = randCamera(r)
		}
	}
	return s
}

func TestStatusAppendersMatchEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		var msg typed
		switch i % 3 {
		case 0:
			m := AnalysisStatusAll{RequestID: randString(r), Timestamp: randString(r)}
			if r.Intn(6) > 0 {
				m.Streams = make([]StreamStatus, r.Intn(4))
				for j := range m.Streams {
					m.Streams[j] = randStream(r)
				}
			}
			msg = m
		case 1:
			msg = &AnalysisStatusStream{RequestID: randString(r), Timestamp: randString(r), Stream: randStream(r)}
		case 2:
			msg = AnalysisStatusCamera{RequestID: randString(r), Timestamp: randString(r), StreamID: r.Intn(5), Camera: randCamera(r)}
		}
		want := viaReflection(t, msg)
		got := Encode(msg)
		if !bytes.Equal(got, want) {
			t.Fatalf("case %d:\nappender   %s\nreflection %s", i, got, want)
		}
	}
}

func TestStatusAppenderRefusesNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		msg := AnalysisStatusCamera{RequestID: "q", Camera: CameraStatus{Files: FilesStatus{
			Processing: []ProcessingFile{{FileID: 1, ProgressPct: f}}}}}
		if _, ok := msg.appendJSON(nil); ok {
			t.Fatalf("%v: appendJSON ok", f)
		}
		live := AnalysisStatusCamera{RequestID: "q", Camera: CameraStatus{Files: FilesStatus{
			Processing: []ProcessingFile{{FileID: 1, Live: &LiveStatus{State: "playing", FPS: f}}}}}}
		if _, ok := live.appendJSON(nil); ok {
			t.Fatalf("live fps %v: appendJSON ok", f)
		}
		got := string(Encode(msg))
		if !strings.Contains(got, `"type":"error"`) || !strings.Contains(got, "cannot encode reply") {
			t.Fatalf("%v: Encode = %s", f, got)
		}
	}
	var nilMsg *AnalysisStatusAll
	if got := string(Encode(nilMsg)); !strings.Contains(got, `"type":"error"`) {
		t.Fatalf("nil message: Encode = %s", got)
	}
}

// The reply is allocated once, with room for the link's seq, and not much more.
func TestStatusAppenderSizesItsBuffer(t *testing.T) {
	m := AnalysisStatusAll{RequestID: "q1", Timestamp: "2025-07-28T12:00:04+09:00", Streams: make([]StreamStatus, 5)}
	id := int64(0)
	for s := range m.Streams {
		m.Streams[s] = StreamStatus{StreamID: s, Status: StatusRunning, Cameras: make([]CameraStatus, 200)}
		for c := range m.Streams[s].Cameras {
			cam := &m.Streams[s].Cameras[c]
			cam.CameraID, cam.Status = int64(s*1000+c), StatusQueued
			cam.Files.Processing = []ProcessingFile{}
			cam.Files.Queued = make([]QueuedFile, 10)
			for f := range cam.Files.Queued {
				id++
				cam.Files.Queued[f] = QueuedFile{FileID: id, FileName: "video_000001.mp4"}
			}
		}
	}
	got := Encode(m)
	if spare := cap(got) - len(got); spare < seqRoom || spare > len(got)/10 {
		t.Fatalf("%d bytes with %d spare", len(got), spare)
	}
	if !bytes.Equal(got, viaReflection(t, m)) {
		t.Fatal("appender and encoding/json differ")
	}
	for _, id := range []int64{1 << 62, -1 << 62} { // 19-digit ids still fit
		for s := range m.Streams {
			for c := range m.Streams[s].Cameras {
				for f := range m.Streams[s].Cameras[c].Files.Queued {
					m.Streams[s].Cameras[c].Files.Queued[f].FileID = id
				}
			}
		}
		if got := Encode(m); cap(got)-len(got) < seqRoom || cap(got)-len(got) > len(got)/10 {
			t.Fatalf("ids of %d: %d bytes with %d spare", id, len(got), cap(got)-len(got))
		}
	}
	for _, v := range []int64{0, 9, 10, -1, -10, 99999, 1<<63 - 1, -1 << 63} {
		if digits(v) != len(strconv.FormatInt(v, 10)) {
			t.Fatalf("digits(%d) = %d", v, digits(v))
		}
	}
}
