package protocol

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The analysis_status replies are the only large messages the instance sends
// (0.6 MB for 10,000 queued files). encoding/json spends ~1.4 ms on one through
// reflection and leaves as much garbage again, and the garbage collector it drives
// made the reply's tail latency miss its budget; these appenders write the same
// bytes directly (TestStatusAppendersMatchEncodingJSON compares them byte for byte).
// Strings that need escaping still go through encoding/json.

// appender is a message that can append its own encoding. ok is false when it
// cannot (a non-finite float); Encode then uses encoding/json, which reports it.
type appender interface {
	size() int // the encoded length, estimated, to allocate the reply once
	appendJSON(b []byte) (out []byte, ok bool)
}

// seqRoom is spare capacity left after an appended message, so that the link can
// add its "seq" member without copying the frame.
const seqRoom = 32

func (m AnalysisStatusAll) size() int {
	n := headSize(m.RequestID)
	for i := range m.Streams {
		n += m.Streams[i].size()
	}
	return n
}

func (m AnalysisStatusAll) appendJSON(b []byte) ([]byte, bool) {
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"streams":`...)
	b, ok := appendList(b, m.Streams, (*StreamStatus).appendJSON)
	return append(b, '}'), ok
}

func (m AnalysisStatusStream) size() int { return headSize(m.RequestID) + m.Stream.size() }

func (m AnalysisStatusStream) appendJSON(b []byte) ([]byte, bool) {
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"stream":`...)
	b, ok := m.Stream.appendJSON(b)
	return append(b, '}'), ok
}

func (m AnalysisStatusCamera) size() int { return headSize(m.RequestID) + m.Camera.size() }

func (m AnalysisStatusCamera) appendJSON(b []byte) ([]byte, bool) {
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"stream_id":`...)
	b = strconv.AppendInt(b, int64(m.StreamID), 10)
	b = append(b, `,"camera":`...)
	b, ok := m.Camera.appendJSON(b)
	return append(b, '}'), ok
}

func headSize(requestID string) int { return 128 + len(requestID) }

func appendHead(b []byte, requestID, timestamp string) []byte {
	b = append(b, `{"type":"`+TypeAnalysisStatus+`","request_id":`...)
	b = appendString(b, requestID)
	b = append(b, `,"timestamp":`...)
	return appendString(b, timestamp)
}

// appendList appends list as a JSON array (null when nil), each element by elem.
func appendList[T any](b []byte, list []T, elem func(*T, []byte) ([]byte, bool)) ([]byte, bool) {
	if list == nil {
		return append(b, "null"...), true
	}
	b = append(b, '[')
	for i := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = elem(&list[i], b); !ok {
			return b, false
		}
	}
	return append(b, ']'), true
}

func (s *StreamStatus) size() int {
	n := 64
	if s.Stalled != nil {
		n += 128 + len(s.Stalled.Action)
	}
	for i := range s.Cameras {
		n += s.Cameras[i].size()
	}
	return n
}

func (c *CameraStatus) size() int {
	n := 160
	for _, p := range c.Files.Processing {
		n += 64 + digits(p.FileID) + len(p.FileName)
		if p.Live != nil {
			n += 128 + len(p.Live.State)
		}
	}
	for _, q := range c.Files.Queued {
		n += len(`{"file_id":,"file_name":""},`) + digits(q.FileID) + len(q.FileName)
	}
	return n
}

// digits is the length of v in decimal.
func digits(v int64) int {
	n := 1
	if v < 0 {
		n++
	}
	for v <= -10 || v >= 10 {
		v /= 10
		n++
	}
	return n
}

func (s *StreamStatus) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"stream_id":`...)
	b = strconv.AppendInt(b, int64(s.StreamID), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, s.Status)
	b = append(b, `,"cameras":`...)
	b, ok := appendList(b, s.Cameras, (*CameraStatus).appendJSON)
	if st := s.Stalled; st != nil {
		b = append(b, `,"stalled":{"file_id":`...)
		b = strconv.AppendInt(b, st.FileID, 10)
		b = append(b, `,"frames":`...)
		b = strconv.AppendUint(b, st.Frames, 10)
		b = append(b, `,"stalled_ms":`...)
		b = strconv.AppendInt(b, st.StalledMS, 10)
		b = append(b, `,"action":`...)
		b = appendString(b, st.Action)
		b = append(b, '}')
	}
	return append(b, '}'), ok
}

func (c *CameraStatus) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"camera_id":`...)
	b = strconv.AppendInt(b, c.CameraID, 10)
	b = append(b, `,"status":`...)
	b = appendString(b, c.Status)
	f := &c.Files
	b = append(b, `,"files":{"processing":`...)
	b, ok := appendList(b, f.Processing, (*ProcessingFile).appendJSON)
	if !ok {
		return b, false
	}
	b = append(b, `,"completed_count":`...)
	b = strconv.AppendInt(b, int64(f.CompletedCount), 10)
	b = append(b, `,"failed_count":`...)
	b = strconv.AppendInt(b, int64(f.FailedCount), 10)
	b = append(b, `,"queued_count":`...)
	b = strconv.AppendInt(b, int64(f.QueuedCount), 10)
	b = append(b, `,"queued":`...)
	b, _ = appendList(b, f.Queued, (*QueuedFile).appendJSON)
	if c.TrackerReset {
		return append(b, `},"tracker_reset":true}`...), true
	}
	return append(b, "}}"...), true
}

func (p *ProcessingFile) appendJSON(b []byte) ([]byte, bool) {
	if math.IsNaN(p.ProgressPct) || math.IsInf(p.ProgressPct, 0) {
		return b, false
	}
	b = appendFileHead(b, p.FileID, p.FileName)
	b = append(b, `,"progress_pct":`...)
	b = appendFloat(b, p.ProgressPct)
	if l := p.Live; l != nil {
		if math.IsNaN(l.FPS) || math.IsInf(l.FPS, 0) {
			return b, false
		}
		b = append(b, `,"live":{"state":`...)
		b = appendString(b, l.State)
		b = append(b, `,"fps":`...)
		b = appendFloat(b, l.FPS)
		b = append(b, `,"last_frame_age_ms":`...)
		if l.LastFrameAgeMS == nil {
			b = append(b, "null"...)
		} else {
			b = strconv.AppendInt(b, *l.LastFrameAgeMS, 10)
		}
		b = append(b, `,"reconnects":`...)
		b = strconv.AppendInt(b, int64(l.Reconnects), 10)
		b = append(b, '}')
	}
	return append(b, '}'), true
}

func (q *QueuedFile) appendJSON(b []byte) ([]byte, bool) {
	return append(appendFileHead(b, q.FileID, q.FileName), '}'), true
}

func appendFileHead(b []byte, id int64, name string) []byte {
	b = append(b, `{"file_id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"file_name":`...)
	return appendString(b, name)
}

// appendFloat formats a finite float as encoding/json does.
func appendFloat(b []byte, f float64) []byte {
	abs, format := math.Abs(f), byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' { // e-07 → e-7, as encoding/json writes it
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString writes s as a JSON string. Valid UTF-8 without quotes, backslashes,
// control characters and U+2028/U+2029 is written as it is (encoding/json without
// HTML escaping leaves it unchanged); anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' {
			plain = false
			break
		}
		if c >= utf8.RuneSelf {
			// U+2028/U+2029 are E2 80 A8/A9.
			plain = utf8.ValidString(s) && !strings.Contains(s, "\u2028") && !strings.Contains(s, "\u2029")
			if plain {
				for j := i; j < len(s); j++ {
					if d := s[j]; d < 0x20 || d == '"' || d == '\\' {
						plain = false
						break
					}
				}
			}
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return append(b, bytes.TrimSuffix(buf.Bytes(), []byte{'\n'})...)
}
