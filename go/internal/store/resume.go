package store

import (
	"bytes"
	"encoding/json"
	"os"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// PrevDied is the file_error reason of a file the previous process had in the engine
// when it died: a resumed state reports it with Lost(PrevDied).
const PrevDied = "the previous process died while playing it"

// takeOver reads the previous process's state. With resume, a state that was not
// stopped cleanly is restored (snapshot, then its journals) and becomes this store's;
// otherwise state.json is kept as state.json.prev and nothing is resumed.
func (s *Store) takeOver(resume bool) {
	ns, err := s.dir.Journals()
	if err != nil {
		s.log.Warn().Err(err).Msg("cannot list the state journals")
	}
	if len(ns) > 0 {
		s.journal.n = ns[len(ns)-1] // the new journals follow the old ones
	}
	if resume {
		if s.restore(ns) {
			return
		}
	}
	if err := s.dir.KeepPrevState(); err != nil {
		s.log.Warn().Err(err).Msg("previous state.json not kept")
	}
}

// restore reads state.json and journals ns; it returns true when the state of the
// previous process was taken over.
func (s *Store) restore(ns []uint64) bool {
	data, err := s.dir.ReadState()
	if err != nil || data == nil {
		s.log.Info().Err(err).Msg("no previous state to resume")
		return false
	}
	var saved File
	if err := json.Unmarshal(data, &saved); err != nil {
		s.log.Error().Err(err).Msg("state.json unreadable; nothing resumed")
		return false
	}
	if saved.Clean {
		s.log.Info().Int("from_pid", saved.PID).Msg("the previous process stopped cleanly; nothing to resume")
		return false
	}
	now := time.Now()
	st, err := analysis.Restore(s.state.Streams(), saved.Analysis, now)
	if err != nil {
		s.log.Error().Err(err).Msg("state.json does not fit this instance; nothing resumed")
		return false
	}
	records := 0
	for _, n := range ns {
		if n < saved.Journal {
			continue
		}
		b, err := os.ReadFile(s.dir.JournalPath(n))
		if err != nil {
			s.log.Error().Err(err).Uint64("journal", n).Msg("state journal unreadable")
			break
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				// a line cut by the crash: it was the last one written
				s.log.Warn().Err(err).Uint64("journal", n).Msg("torn state journal line ignored")
				break
			}
			if err := replay(st, r, s.limits, now); err != nil {
				s.log.Warn().Err(err).Msg("state journal record not replayed")
			}
			records++
		}
	}
	s.state = st
	cams, files := st.Counts()
	s.resumed = &protocol.Resumed{Cameras: cams, Files: files, FromPID: saved.PID}
	s.log.Info().Int("cameras", cams).Int("files", files).Int("from_pid", saved.PID).Int("journal_records", records).
		Msg("resumed the previous process's queues")
	return true
}
