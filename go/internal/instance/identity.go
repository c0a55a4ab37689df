// Package instance holds the identity of one supervisor instance (its APP_ID, the
// APP_ID=<id> argument on its own command line, its process name) and its private
// directory under the instance root: lock, pid files, engine socket and state.json.
package instance

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/sys/unix"
)

// MaxIDLen is the longest accepted instance id.
const MaxIDLen = 64

// TagPrefix starts the argument that carries the instance id on the command line.
const TagPrefix = "APP_ID="

// maxCommLen is the kernel's limit for a task name (TASK_COMM_LEN 16, NUL included).
const maxCommLen = 15

// ValidateID reports whether id can name an instance: 1..64 characters from
// [A-Za-z0-9._-], and neither "." nor "..", so it is safe as a path element and in a
// pgrep pattern.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("instance id is empty")
	}
	if len(id) > MaxIDLen {
		return fmt.Errorf("instance id %.16q… is %d characters long (max %d)", id, len(id), MaxIDLen)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("instance id %q is not allowed", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("instance id %q: character %q not allowed (use A-Z a-z 0-9 . _ -)", id, c)
		}
	}
	return nil
}

// Tag returns the command-line argument that names the instance: "APP_ID=" + appID.
func Tag(appID string) string { return TagPrefix + appID }

// HasTag reports whether args (os.Args shape: args[0] is the program) carries
// Tag(appID) right after the program name, where Reexec puts it.
func HasTag(args []string, appID string) bool {
	return len(args) > 1 && args[1] == Tag(appID)
}

// StripTag returns args without any "APP_ID=…" argument after args[0], so that flag
// parsing sees the command line as the user typed it. args is not modified.
func StripTag(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if i > 0 && strings.HasPrefix(a, TagPrefix) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// Reexec replaces the running program with itself (/proc/self/exe), its arguments
// prefixed by Tag(appID) right after argv[0] and its environment unchanged, so that
// `pgrep -f "APP_ID=<id>"` finds it: an `APP_ID=<id>` written before a command is an
// environment assignment and appears in no command line. When os.Args already carries
// the tag it returns nil at once; otherwise it returns only on failure.
func Reexec(appID string) error {
	if err := ValidateID(appID); err != nil {
		return err
	}
	if HasTag(os.Args, appID) {
		return nil
	}
	argv := make([]string, 0, len(os.Args)+1)
	argv = append(argv, os.Args[0], Tag(appID))
	argv = append(argv, os.Args[1:]...)
	if err := syscall.Exec("/proc/self/exe", argv, os.Environ()); err != nil {
		return fmt.Errorf("re-exec with %s: %w", Tag(appID), err)
	}
	return nil // not reached
}

// SetProcessName sets the process name shown by ps, top and pgrep (without -f) with
// prctl(PR_SET_NAME), cut to the kernel's 15 bytes (at a UTF-8 boundary).
//
// PR_SET_NAME names the calling thread only, while tools read the name of the main
// thread. A goroutine may run on any thread, so when the caller is not on the main
// thread the main thread's name is also written through /proc/self/comm, which the
// kernel allows within one thread group.
func SetProcessName(name string) error {
	name = truncateName(name)
	if name == "" {
		return errors.New("set process name: empty name")
	}
	p, err := unix.BytePtrFromString(name) // heap-allocated: it cannot move during the call
	if err != nil {
		return fmt.Errorf("set process name %q: %w", name, err)
	}
	err = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(p)), 0, 0, 0)
	runtime.KeepAlive(p)
	if err != nil {
		return fmt.Errorf("prctl(PR_SET_NAME, %q): %w", name, err)
	}
	if unix.Gettid() != unix.Getpid() {
		if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
			return fmt.Errorf("set main thread name %q: %w", name, err)
		}
	}
	return nil
}

func truncateName(name string) string {
	if len(name) <= maxCommLen {
		return name
	}
	n := maxCommLen
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return name[:n]
}
