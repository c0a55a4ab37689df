package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// The journal makes state.json's cost honest: instead of rewriting the whole state
// (40,000 files: 100 ms) on every change, each change is appended as one line (a
// write(2), no fsync: it survives the death of the process, which is what resume is
// for), before anything it caused is sent. state.json is the compaction: a snapshot
// names the journal that follows it, and the journals before that are removed once it
// is written. A change is applied live and replayed by the same code (apply), so the
// two cannot drift apart.

// Change is one change of the analysis state that the journal keeps: a server request
// that changes the queues, or what the engine did with a file. Make one with Request,
// Done, Failed, Hold, Lost or Back, and apply it with Store.Apply.
type Change struct {
	rec record
	req protocol.Request // a request's, decoded
	now time.Time        // when a request arrived
}

// Request is a start_analysis, push_file or interrupt_analysis, decoded from frame,
// which arrived at now.
func Request(req protocol.Request, frame []byte, now time.Time) Change {
	return Change{rec: record{Op: recRequest, Frame: frame}, req: req, now: now}
}

// Done is the end of file on slot after frames frames (file_done).
func Done(slot int, file int64, frames uint64) Change {
	return Change{rec: record{Op: recDone, Slot: slot, File: file, Frames: frames}}
}

// Failed is the failure of file on slot, for reason (file_error, a refused play or
// path, a stall).
func Failed(slot int, file int64, reason string) Change {
	return Change{rec: record{Op: recFailed, Slot: slot, File: file, Reason: reason}}
}

// Hold stops the slots from playing: the engine is gone.
func Hold() Change { return Change{rec: record{Op: recHold}} }

// Lost is the loss of the engine, for reason: the files it had fail.
func Lost(reason string) Change { return Change{rec: record{Op: recLost, Reason: reason}} }

// Back is an engine ready again: the held slots play on.
func Back() Change { return Change{rec: record{Op: recBack}} }

// record is a Change as one journal line.
type record struct {
	Op string `json:"op"` // see apply
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

// apply makes change c to s.
func apply(s *analysis.State, c Change) (analysis.Result, error) {
	r := c.rec
	switch r.Op {
	case recRequest:
		switch q := c.req.(type) {
		case *protocol.StartAnalysis:
			return s.Start(q, c.now), nil
		case *protocol.PushFile:
			return s.Push(q, c.now), nil
		case *protocol.InterruptAnalysis:
			return s.Interrupt(q), nil
		case nil:
			return analysis.Result{}, fmt.Errorf("journalled request without its request")
		}
		return analysis.Result{}, fmt.Errorf("journalled request of type %s", c.req.MessageType())
	case recDone:
		return s.FileDone(r.Slot, r.File, r.Frames), nil
	case recFailed:
		return s.FileFailed(r.Slot, r.File, r.Reason), nil
	case recHold:
		s.Hold()
		return analysis.Result{Changed: true}, nil
	case recLost:
		return s.EngineLost(r.Reason), nil
	case recBack:
		return s.EngineBack(), nil
	}
	return analysis.Result{}, fmt.Errorf("unknown journal record %q", r.Op)
}

// replay applies journal line r to s as the live process did; its replies, events and
// commands were sent by the process that wrote it. Requests count as arrived at now
// (the journal keeps no times).
func replay(s *analysis.State, r record, limits protocol.Limits, now time.Time) error {
	c := Change{rec: r, now: now}
	if r.Op == recRequest {
		req, rej := protocol.Decode(r.Frame, limits)
		if rej != nil {
			return fmt.Errorf("journalled request refused: %s", rej.Reason())
		}
		c.req = req
	}
	_, err := apply(s, c)
	return err
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
