package supervisor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// The journal makes state.json's cost honest: instead of rewriting the whole state
// (40,000 files: 100 ms) on every change, each input that changed the state is
// appended as one line (a write(2), no fsync: it survives the death of the process,
// which is what --resume is for), before anything it caused is sent. state.json is
// the compaction: a snapshot names the journal that follows it, and the journals
// before that are removed once it is written.

// record is one state input, replayed through replay in order.
type record struct {
	Op string `json:"op"` // see replay
	// Frame is the server request (start_analysis, push_file, interrupt_analysis).
	Frame  json.RawMessage `json:"frame,omitempty"`
	Slot   int             `json:"slot,omitempty"`
	File   int64           `json:"file,omitempty"`
	Frames uint64          `json:"frames,omitempty"`
	Reason string          `json:"reason,omitempty"`
}

const (
	recRequest = "req"
	recDone    = "done"
	recFailed  = "fail"
	recHold    = "hold"
	recLost    = "lost"
	recBack    = "back"
)

// replay applies r to s as the live loop did; its replies, events and commands were
// sent by the process that wrote it. Requests count as arrived at now (the journal keeps
// no times).
func replay(s *analysis.State, r record, limits protocol.Limits, now time.Time) error {
	switch r.Op {
	case recRequest:
		req, rej := protocol.Decode(r.Frame, limits)
		if rej != nil {
			return fmt.Errorf("journalled request refused: %s", rej.Reason())
		}
		switch q := req.(type) {
		case *protocol.StartAnalysis:
			s.Start(q, now)
		case *protocol.PushFile:
			s.Push(q, now)
		case *protocol.InterruptAnalysis:
			s.Interrupt(q)
		default:
			return fmt.Errorf("journalled request of type %s", req.MessageType())
		}
	case recDone:
		s.FileDone(r.Slot, r.File, r.Frames)
	case recFailed:
		s.FileFailed(r.Slot, r.File, r.Reason)
	case recHold:
		s.Hold()
	case recLost:
		s.EngineLost(r.Reason)
	case recBack:
		s.EngineBack()
	default:
		return fmt.Errorf("unknown journal record %q", r.Op)
	}
	return nil
}

// journal appends records to the current journal file of an instance dir.
type journal struct {
	dir    *instance.Dir
	log    zerolog.Logger
	n      uint64 // number of the current file
	f      *os.File
	failed bool // a write failed: logged once
	buf    bytes.Buffer
}

// rotate starts the next journal file and returns its number: the snapshot being
// taken holds everything written before.
func (j *journal) rotate() uint64 {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	j.n++
	f, err := j.dir.OpenJournal(j.n)
	if err != nil {
		j.fail(err)
		return j.n
	}
	j.f = f
	return j.n
}

// add appends r as one line. A request's frame goes in as it came, unless it has
// newlines (JSON allows them between tokens): then it is compacted, which costs
// 5 ms for a 10,000-file push here.
func (j *journal) add(r record) {
	if j.f == nil {
		return
	}
	j.buf.Reset()
	frame := r.Frame
	r.Frame = nil
	b, err := json.Marshal(r)
	if err != nil {
		j.fail(err)
		return
	}
	if frame != nil {
		j.buf.Write(b[:len(b)-1])
		j.buf.WriteString(`,"frame":`)
		if bytes.IndexByte(frame, '\n') < 0 {
			j.buf.Write(frame)
		} else if err := json.Compact(&j.buf, frame); err != nil {
			j.fail(err)
			return
		}
		j.buf.WriteByte('}')
	} else {
		j.buf.Write(b)
	}
	j.buf.WriteByte('\n')
	if _, err := j.f.Write(j.buf.Bytes()); err != nil {
		j.fail(err)
	}
	if j.buf.Cap() > 1<<20 {
		j.buf = bytes.Buffer{} // do not keep a 10,000-file push's buffer
	}
}

func (j *journal) fail(err error) {
	if !j.failed {
		j.failed = true
		j.log.Error().Err(err).Msg("state journal not written; a --resume after a crash may miss changes")
	}
}

func (j *journal) close() {
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// journaled writes r when res changed the state, and returns res.
func (l *loop) journaled(r record, res analysis.Result) analysis.Result {
	if res.Changed {
		l.journal.add(r)
	}
	return res
}

// savedState is what resume reads of state.json (stateFile).
type savedState struct {
	PID      int               `json:"pid"`
	Clean    bool              `json:"clean"`
	Journal  uint64            `json:"journal"`
	Analysis analysis.Snapshot `json:"analysis"`
}

// prevDied is the file_error of a file the previous process had in the engine.
const prevDied = "the previous process died while playing it"

// takeOver reads the previous process's state. With resume, a state that was not
// stopped cleanly is restored (snapshot, then its journals) and becomes this loop's;
// otherwise state.json is kept as state.json.prev and nothing is resumed.
func (l *loop) takeOver(resume bool) {
	dir := l.d.Dir
	ns, err := dir.Journals()
	if err != nil {
		l.log.Warn().Err(err).Msg("cannot list the state journals")
	}
	if len(ns) > 0 {
		l.journal.n = ns[len(ns)-1] // the new journals follow the old ones
	}
	if resume {
		if l.restore(ns) {
			return
		}
	}
	if err := dir.KeepPrevState(); err != nil {
		l.log.Warn().Err(err).Msg("previous state.json not kept")
	}
}

// restore reads state.json and journals ns; it returns true when the state of the
// previous process was taken over.
func (l *loop) restore(ns []uint64) bool {
	dir := l.d.Dir
	data, err := dir.ReadState()
	if err != nil || data == nil {
		l.log.Info().Err(err).Msg("no previous state to resume")
		return false
	}
	var saved savedState
	if err := json.Unmarshal(data, &saved); err != nil {
		l.log.Error().Err(err).Msg("state.json unreadable; nothing resumed")
		return false
	}
	if saved.Clean {
		l.log.Info().Int("from_pid", saved.PID).Msg("the previous process stopped cleanly; nothing to resume")
		return false
	}
	now := time.Now()
	st, err := analysis.Restore(l.state.Streams(), saved.Analysis, now)
	if err != nil {
		l.log.Error().Err(err).Msg("state.json does not fit this instance; nothing resumed")
		return false
	}
	records := 0
	for _, n := range ns {
		if n < saved.Journal {
			continue
		}
		b, err := os.ReadFile(dir.JournalPath(n))
		if err != nil {
			l.log.Error().Err(err).Uint64("journal", n).Msg("state journal unreadable")
			break
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				// a line cut by the crash: it was the last one written
				l.log.Warn().Err(err).Uint64("journal", n).Msg("torn state journal line ignored")
				break
			}
			if err := replay(st, r, l.limits, now); err != nil {
				l.log.Warn().Err(err).Msg("state journal record not replayed")
			}
			records++
		}
	}
	l.state = st
	cams, files := st.Counts()
	l.resumed = &protocol.Resumed{Cameras: cams, Files: files, FromPID: saved.PID}
	l.log.Info().Int("cameras", cams).Int("files", files).Int("from_pid", saved.PID).Int("journal_records", records).
		Msg("resumed the previous process's queues")
	return true
}

// resumePlay reports the files the previous process had in the engine and plays on.
func (l *loop) resumePlay() {
	l.apply(l.prom.failures(promexport.ErrEngine, l.journaled(record{Op: recLost, Reason: prevDied}, l.state.EngineLost(prevDied))))
	l.apply(l.journaled(record{Op: recBack}, l.state.EngineBack()))
}
