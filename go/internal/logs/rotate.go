package logs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// rotator writes the live log file and rotates it under the spec's names
// (<name>.log → <name>.log.1 … <name>.log.N).
//
// No log-rotation library: lumberjack, the usual one, names its backups
// <name>-<timestamp>.log, prunes by that pattern and counts its size limit in
// whole megabytes, none of which fits the spec's .log.1 … .log.10 at 2 MB; what
// was left for it (create the folder, open for append) is two system calls.
//
// One mutex covers the size check, the rotation and the write, so concurrent
// writers (the zerolog logger and the engine's output) never split a record
// across files or write into a file being renamed.
type rotator struct {
	appID   string // JSON-quoted, for the records written here
	mu      sync.Mutex
	f       *os.File // nil after a failed reopen: the next write tries again
	path    string
	max     int64
	backups int
	size    int64
	closed  bool
}

func newRotator(path, appID string, maxSize int64, backups int) (*rotator, error) {
	r := &rotator{
		appID:   jsonString(appID),
		path:    path,
		max:     maxSize,
		backups: backups,
	}
	// Opened now, so that an unusable log root is reported by Open rather than
	// lost later.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	if err := r.open(); err != nil {
		return nil, err
	}
	return r, nil
}

// open opens (creating, mode 0600) the live file for appending. r.mu is held
// or r is not shared yet.
func (r *rotator) open() error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("logs: open %s: %w", r.path, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("logs: open %s: %w", r.path, err)
	}
	r.f, r.size = f, st.Size()
	return nil
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
	if r.f != nil && r.size > 0 && r.size+int64(len(p)) > r.max {
		// On failure keep writing to the current file rather than lose the
		// record.
		rotErr = r.rotate()
	}
	if r.f == nil {
		if err := r.open(); err != nil {
			return 0, err
		}
	}
	w, err := r.f.Write(p)
	r.size += int64(w)
	if err != nil {
		return 0, fmt.Errorf("logs: write: %w", err)
	}
	return n, rotErr
}

// rotate shifts the numbered backups up by one (the rename over the last one
// drops the oldest), moves the live file to .1 and opens a new live file.
// r.mu is held.
func (r *rotator) rotate() error {
	for i := r.backups - 1; i >= 1; i-- {
		err := os.Rename(r.backup(i), r.backup(i+1))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("logs: rotate: %w", err)
		}
	}
	// Renaming an open file is fine on Linux; the old descriptor is closed only
	// once the live name is free.
	if err := os.Rename(r.path, r.backup(1)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("logs: rotate: %w", err)
	}
	old := r.f
	r.f = nil
	if err := old.Close(); err != nil {
		return fmt.Errorf("logs: rotate: close: %w", err)
	}
	return r.open()
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
	if r.f == nil {
		return nil
	}
	if err := r.f.Close(); err != nil {
		return fmt.Errorf("logs: close: %w", err)
	}
	return nil
}
