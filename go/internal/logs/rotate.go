package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"gopkg.in/natefinch/lumberjack.v2"
)

// rotator writes the live log file through lumberjack and rotates it under
// the spec's names (<name>.log → <name>.log.1 … <name>.log.N).
//
// Why not lumberjack's own rotation: it can only name backups
// <name>-<timestamp>.log and prunes by that pattern, and the spec's numbered
// names must win. So lumberjack keeps doing the file work (creating the
// folder and the file, appending, reopening after a Close) with a size limit
// set above ours so that it never rotates by itself, and only the rotation —
// deciding when, and shifting the numbered files — is written here.
// (lumberjack keeps one idle goroutine per Logger for its pruning, unused
// here since MaxBackups and MaxAge stay zero.)
//
// One mutex covers the size check, the rotation and the write, so concurrent
// writers (the zerolog logger and the engine's output) never split a record
// across files or write into a file being renamed.
type rotator struct {
	appID   string // JSON-quoted, for the records written here
	mu      sync.Mutex
	lj      *lumberjack.Logger
	path    string
	max     int64
	backups int
	size    int64
	closed  bool
}

func newRotator(path, appID string, maxSize int64, backups int) (*rotator, error) {
	r := &rotator{
		appID: jsonString(appID),
		lj: &lumberjack.Logger{
			Filename: path,
			// Whole megabytes, above our limit: lumberjack must never rotate.
			MaxSize: int(maxSize>>20) + 2,
		},
		path:    path,
		max:     maxSize,
		backups: backups,
	}
	if st, err := os.Stat(path); err == nil {
		r.size = st.Size()
	}
	// An empty write makes lumberjack create the folder and the file now, so
	// that an unusable log root is reported by Open rather than lost later.
	if _, err := r.lj.Write(nil); err != nil {
		return nil, fmt.Errorf("logs: open %s: %w", path, err)
	}
	return r, nil
}

// Write appends p (one whole record) to the live file, rotating first when p
// would take it past max. A record larger than max is replaced by a short
// notice so that no file exceeds the limit. Writes after close are discarded.
func (r *rotator) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return n, nil
	}
	if int64(len(p)) > r.max {
		p = []byte(`{"level":"error","` + AppIDField + `":` + r.appID + `,"source":"logs","message":"record of ` +
			strconv.Itoa(len(p)) + ` bytes dropped: larger than the log file size limit"}` + "\n")
	}
	var rotErr error
	if r.size > 0 && r.size+int64(len(p)) > r.max {
		// On failure keep writing to the current file rather than lose the
		// record; lumberjack's limit still bounds it.
		rotErr = r.rotate()
	}
	w, err := r.lj.Write(p)
	r.size += int64(w)
	if err != nil {
		return 0, fmt.Errorf("logs: write: %w", err)
	}
	return n, rotErr
}

// rotate shifts the numbered backups up by one (the rename over the last one
// drops the oldest) and moves the live file to .1; lumberjack opens a new
// live file on the next write. r.mu is held.
func (r *rotator) rotate() error {
	if err := r.lj.Close(); err != nil {
		return fmt.Errorf("logs: rotate: close: %w", err)
	}
	for i := r.backups - 1; i >= 1; i-- {
		err := os.Rename(r.backup(i), r.backup(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logs: rotate: %w", err)
		}
	}
	if err := os.Rename(r.path, r.backup(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: rotate: %w", err)
	}
	r.size = 0
	return nil
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

func (r *rotator) backup(i int) string { return r.path + "." + strconv.Itoa(i) }

func (r *rotator) close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if err := r.lj.Close(); err != nil {
		return fmt.Errorf("logs: close: %w", err)
	}
	return nil
}
