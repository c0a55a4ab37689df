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
	appendJSON(b []byte) (out []byte, ok bool)
}

// seqRoom is spare capacity left after an appended message, so that the link can
// add its "seq" member without copying the frame.
const seqRoom = 32

func (m AnalysisStatusAll) appendJSON(b []byte) ([]byte, bool) {
	if b == nil {
		n := 0
		for i := range m.Streams {
			n += m.Streams[i].size()
		}
		b = make([]byte, 0, 128+len(m.RequestID)+n+seqRoom)
	}
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"streams":`...)
	if m.Streams == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range m.Streams {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = m.Streams[i].appendJSON(b); !ok {
				return nil, false
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func (m AnalysisStatusStream) appendJSON(b []byte) ([]byte, bool) {
	if b == nil {
		b = make([]byte, 0, 128+len(m.RequestID)+m.Stream.size()+seqRoom)
	}
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"stream":`...)
	b, ok := m.Stream.appendJSON(b)
	if !ok {
		return nil, false
	}
	return append(b, '}'), true
}

func (m AnalysisStatusCamera) appendJSON(b []byte) ([]byte, bool) {
	if b == nil {
		b = make([]byte, 0, 128+len(m.RequestID)+m.Camera.size()+seqRoom)
	}
	b = appendHead(b, m.RequestID, m.Timestamp)
	b = append(b, `,"stream_id":`...)
	b = strconv.AppendInt(b, int64(m.StreamID), 10)
	b = append(b, `,"camera":`...)
	b, ok := m.Camera.appendJSON(b)
	if !ok {
		return nil, false
	}
	return append(b, '}'), true
}

func appendHead(b []byte, requestID, timestamp string) []byte {
	b = append(b, `{"type":"`+TypeAnalysisStatus+`","request_id":`...)
	b = appendString(b, requestID)
	b = append(b, `,"timestamp":`...)
	return appendString(b, timestamp)
}

// size estimates the encoded length, to allocate the reply once.
func (s *StreamStatus) size() int {
	n := 64
	for i := range s.Cameras {
		n += s.Cameras[i].size()
	}
	return n
}

func (c *CameraStatus) size() int {
	n := 160
	for _, p := range c.Files.Processing {
		n += 64 + digits(p.FileID) + len(p.FileName)
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
	if s.Cameras == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range s.Cameras {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = s.Cameras[i].appendJSON(b); !ok {
				return nil, false
			}
		}
		b = append(b, ']')
	}
	return append(b, '}'), true
}

func (c *CameraStatus) appendJSON(b []byte) ([]byte, bool) {
	b = append(b, `{"camera_id":`...)
	b = strconv.AppendInt(b, c.CameraID, 10)
	b = append(b, `,"status":`...)
	b = appendString(b, c.Status)
	f := &c.Files
	b = append(b, `,"files":{"processing":`...)
	if f.Processing == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, p := range f.Processing {
			if math.IsNaN(p.ProgressPct) || math.IsInf(p.ProgressPct, 0) {
				return nil, false
			}
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"file_id":`...)
			b = strconv.AppendInt(b, p.FileID, 10)
			b = append(b, `,"file_name":`...)
			b = appendString(b, p.FileName)
			b = append(b, `,"progress_pct":`...)
			b = appendFloat(b, p.ProgressPct)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"completed_count":`...)
	b = strconv.AppendInt(b, int64(f.CompletedCount), 10)
	b = append(b, `,"failed_count":`...)
	b = strconv.AppendInt(b, int64(f.FailedCount), 10)
	b = append(b, `,"queued_count":`...)
	b = strconv.AppendInt(b, int64(f.QueuedCount), 10)
	b = append(b, `,"queued":`...)
	if f.Queued == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, q := range f.Queued {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"file_id":`...)
			b = strconv.AppendInt(b, q.FileID, 10)
			b = append(b, `,"file_name":`...)
			b = appendString(b, q.FileName)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}}"...), true
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
