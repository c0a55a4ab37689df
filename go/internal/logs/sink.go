package logs

import (
	"encoding/json"
	"sort"
	"strings"
	"time"

	"github.com/rs/zerolog"
)

// sink is the supervisor logger's writer: each zerolog record goes to the
// file and to memory and Live.
type sink struct{ l *Logs }

// Write implements io.Writer for records without a known level.
func (s *sink) Write(p []byte) (int, error) { return s.WriteLevel(zerolog.NoLevel, p) }

// WriteLevel implements zerolog.LevelWriter.
func (s *sink) WriteLevel(lvl zerolog.Level, p []byte) (int, error) {
	n, err := s.l.rot.Write(p)
	if lvl == zerolog.NoLevel {
		lvl = zerolog.InfoLevel
	}
	s.l.record(entry{lvl: lvl, raw: append([]byte(nil), p...)})
	return n, err
}

// parseRecord turns a zerolog JSON record into a Line (all but its Level):
// its message followed by its other fields as key=value (so that the context
// of a record, such as an error, survives), its time and its source.
func parseRecord(p []byte) Line {
	line := Line{Time: time.Now(), Source: "supervisor"}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(p, &m); err != nil {
		line.Message = strings.TrimSpace(string(p))
		return line
	}
	str := func(k string) (string, bool) {
		var v string
		raw, ok := m[k]
		if !ok || json.Unmarshal(raw, &v) != nil {
			return "", false
		}
		delete(m, k)
		return v, true
	}
	line.Message, _ = str(zerolog.MessageFieldName)
	if v, ok := str(zerolog.TimestampFieldName); ok {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			line.Time = t
		}
	}
	if v, ok := str("source"); ok {
		line.Source = v
	}
	delete(m, zerolog.LevelFieldName)
	delete(m, AppIDField) // the same in every record of the instance
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(line.Message)
	for _, k := range keys {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteByte('=')
		var s string
		if json.Unmarshal(m[k], &s) == nil {
			b.WriteString(s)
		} else {
			b.Write(m[k])
		}
	}
	line.Message = b.String()
	return line
}
