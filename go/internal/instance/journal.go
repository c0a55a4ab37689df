package instance

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// The analysis state survives a crash of the supervisor as state.json (a snapshot,
// written now and then) plus journals: state.journal.<n>, appended on every change
// and replayed on top of the snapshot that names n. A new snapshot starts a new
// journal; the older ones are removed once it is written.
const (
	journalPrefix = "state.journal."
	prevStateName = "state.json.prev"
)

// ReadState returns the content of state.json; nil without error when there is none.
func (d *Dir) ReadState() ([]byte, error) {
	b, err := os.ReadFile(d.StatePath())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return b, err
}

// KeepPrevState moves state.json to state.json.prev (replacing an older one) and
// removes the journals: the previous process's state is kept for reading, not
// resumed.
func (d *Dir) KeepPrevState() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	err := os.Rename(d.StatePath(), filepath.Join(d.path, prevStateName))
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	return errors.Join(err, d.removeJournals(^uint64(0)))
}

// Journals lists the numbers of the journals present, ascending.
func (d *Dir) Journals() ([]uint64, error) {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return nil, err
	}
	var out []uint64
	for _, e := range entries {
		if n, ok := journalNumber(e.Name()); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out, nil
}

func journalNumber(name string) (uint64, bool) {
	rest, ok := strings.CutPrefix(name, journalPrefix)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(rest, 10, 64)
	return n, err == nil
}

// JournalPath returns the path of journal n.
func (d *Dir) JournalPath(n uint64) string {
	return filepath.Join(d.path, journalPrefix+strconv.FormatUint(n, 10))
}

// OpenJournal opens journal n for appending, creating it (mode 0600).
func (d *Dir) OpenJournal(n uint64) (*os.File, error) {
	f, err := os.OpenFile(d.JournalPath(n), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal: %w", err)
	}
	return f, nil
}

// RemoveJournalsBefore removes the journals numbered below n.
func (d *Dir) RemoveJournalsBefore(n uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.removeJournals(n)
}

func (d *Dir) removeJournals(below uint64) error {
	entries, err := os.ReadDir(d.path)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if n, ok := journalNumber(e.Name()); ok && n < below {
			if err := os.Remove(filepath.Join(d.path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
