package instance

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultRoot is the directory that holds one directory per instance.
const DefaultRoot = "/tmp/ds"

const (
	lockName   = "instance.lock"
	socketName = "engine.sock"
	stateName  = "state.json"
	// maxSocketPath is sizeof(sockaddr_un.sun_path) minus the terminating NUL.
	maxSocketPath = 107
	// lockPIDWait bounds how long a refused Open waits for the holder to write its pid.
	lockPIDWait = 200 * time.Millisecond
)

// ErrAlreadyRunning is wrapped by the error Open returns when another live process
// holds the instance's lock.
var ErrAlreadyRunning = errors.New("instance already running")

// Dir is the private directory of one instance, <root>/<app_id>, held under an
// exclusive lock for as long as it is open.
type Dir struct {
	id   string
	path string
	lock *os.File

	mu   sync.Mutex // serialises writes and guards pids
	pids map[string]bool
}

// Open creates (mkdir -p) root, mode 0755 when new, and root/appID with mode 0700
// (an existing one is chmod'ed to 0700), then takes an exclusive flock on its lock
// file. While another process holds the lock, Open fails with
// "instance <id> already running (pid N)", wrapping ErrAlreadyRunning. The lock dies
// with the process, so a crashed instance never blocks its successor. root "" means
// DefaultRoot.
func Open(root, appID string) (*Dir, error) {
	if err := ValidateID(appID); err != nil {
		return nil, err
	}
	if root == "" {
		root = DefaultRoot
	}
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("instance root %q: %w", root, err)
	}
	if err := mkdirMode(root, 0o755, false); err != nil {
		return nil, err
	}
	path := filepath.Join(root, appID)
	if err := mkdirMode(path, 0o700, true); err != nil {
		return nil, err
	}
	if n := len(filepath.Join(path, socketName)); n > maxSocketPath {
		return nil, fmt.Errorf("instance dir %s: socket path is %d bytes, the limit is %d", path, n, maxSocketPath)
	}
	lock, err := os.OpenFile(filepath.Join(path, lockName), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("instance %s: open lock: %w", appID, err)
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("instance %s already running (pid %s): %w", appID, holderPID(lock), ErrAlreadyRunning)
		}
		return nil, fmt.Errorf("instance %s: lock %s: %w", appID, lock.Name(), err)
	}
	if err := writeLockPID(lock); err != nil {
		lock.Close()
		return nil, fmt.Errorf("instance %s: %w", appID, err)
	}
	return &Dir{id: appID, path: path, lock: lock, pids: map[string]bool{}}, nil
}

// mkdirMode creates dir with mode (parents as needed, mode 0755) and sets mode exactly,
// whatever the umask. An existing directory keeps its mode unless force is set, and
// then it must belong to this user. A symlink is refused.
func mkdirMode(dir string, mode fs.FileMode, force bool) error {
	created := false
	if err := os.Mkdir(dir, mode); err == nil {
		created = true
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(dir), err)
		}
		if err := os.Mkdir(dir, mode); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory", dir)
	}
	if st, ok := fi.Sys().(*unix.Stat_t); force && ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s is owned by uid %d, not by this user (uid %d)", dir, st.Uid, os.Geteuid())
	}
	if (created || force) && fi.Mode().Perm() != mode {
		if err := os.Chmod(dir, mode); err != nil {
			return fmt.Errorf("chmod %s: %w", dir, err)
		}
	}
	return nil
}

func writeLockPID(lock *os.File) error {
	if err := lock.Truncate(0); err != nil {
		return fmt.Errorf("truncate lock: %w", err)
	}
	if _, err := lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0); err != nil {
		return fmt.Errorf("write lock: %w", err)
	}
	return nil
}

// holderPID reads the pid the lock holder wrote, waiting briefly because the holder
// writes it just after taking the lock.
func holderPID(lock *os.File) string {
	deadline := time.Now().Add(lockPIDWait)
	buf := make([]byte, 32)
	for {
		n, _ := lock.ReadAt(buf, 0)
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(buf[:n]))); err == nil && pid > 0 {
			return strconv.Itoa(pid)
		}
		if time.Now().After(deadline) {
			return "unknown"
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// ID returns the instance id.
func (d *Dir) ID() string { return d.id }

// Path returns the absolute path of the instance directory.
func (d *Dir) Path() string { return d.path }

// SocketPath returns the path of the engine's control socket, <dir>/engine.sock.
func (d *Dir) SocketPath() string { return filepath.Join(d.path, socketName) }

// StatePath returns the path of the state snapshot, <dir>/state.json.
func (d *Dir) StatePath() string { return filepath.Join(d.path, stateName) }

// PIDPath returns the path of the pid file for name, <dir>/<name>.pid.
func (d *Dir) PIDPath(name string) string { return filepath.Join(d.path, name+".pid") }

// WritePID atomically writes pid to <dir>/<name>.pid (for example supervisor.pid or
// engine.pid); Close removes it. name follows the rules of ValidateID.
func (d *Dir) WritePID(name string, pid int) error {
	if err := ValidateID(name); err != nil {
		return fmt.Errorf("pid file name: %w", err)
	}
	if pid <= 0 {
		return fmt.Errorf("pid file %s: invalid pid %d", name, pid)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.writeAtomic(name+".pid", []byte(strconv.Itoa(pid)+"\n"), 0o644); err != nil {
		return err
	}
	d.pids[name] = true
	return nil
}

// RemovePID removes <dir>/<name>.pid; a missing file is not an error.
func (d *Dir) RemovePID(name string) {
	if ValidateID(name) != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = os.Remove(d.PIDPath(name))
	delete(d.pids, name)
}

// WriteState replaces <dir>/state.json with data atomically: readers see either the
// previous or the new content, never a mix, even across a crash (temp file in the same
// directory, fsync, rename, fsync of the directory).
func (d *Dir) WriteState(data []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.writeAtomic(stateName, data, 0o600)
}

func (d *Dir) writeAtomic(name string, data []byte, mode fs.FileMode) (err error) {
	if d.lock == nil {
		return fmt.Errorf("write %s: instance dir closed", name)
	}
	f, err := os.CreateTemp(d.path, "."+name+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", name, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err = os.Rename(tmp, filepath.Join(d.path, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if dir, derr := os.Open(d.path); derr == nil {
		_ = dir.Sync() // makes the rename durable; the content is already safe
		dir.Close()
	}
	return nil
}

// Close removes the pid files written through this Dir and the engine socket, then
// releases the lock. state.json stays for post-mortem reading. Close is idempotent.
func (d *Dir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.lock == nil {
		return nil
	}
	var errs []error
	for name := range d.pids {
		if err := os.Remove(d.PIDPath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	d.pids = map[string]bool{}
	if err := os.Remove(d.SocketPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		errs = append(errs, err)
	}
	// The lock file itself stays: unlinking it would let a waiting opener lock a
	// deleted inode while a third process locks a new file.
	if err := d.lock.Truncate(0); err != nil {
		errs = append(errs, err)
	}
	if err := d.lock.Close(); err != nil { // closing the last descriptor drops the flock
		errs = append(errs, err)
	}
	d.lock = nil
	if len(errs) > 0 {
		return fmt.Errorf("close instance dir %s: %w", d.path, errors.Join(errs...))
	}
	return nil
}
