package instance

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as a helper process, chosen by this variable.
const helperEnv = "INSTANCE_TEST_HELPER"

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "":
		os.Exit(m.Run())
	case "reexec":
		helperReexec()
	case "name":
		helperName()
	case "lock":
		helperLock()
	default:
		fmt.Fprintln(os.Stderr, "unknown helper mode")
		os.Exit(2)
	}
}

// helperReexec re-executes itself with the tag, then reports its argv and waits for EOF
// on stdin.
func helperReexec() {
	id := os.Getenv("HELPER_APP_ID")
	if !HasTag(os.Args, id) {
		err := Reexec(id)
		fmt.Fprintln(os.Stderr, "reexec returned:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(map[string]any{"args": os.Args, "stripped": StripTag(os.Args), "pid": os.Getpid()})
	fmt.Println(string(out))
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// helperName sets the process name from a goroutine locked to a thread that is not
// the main thread, then waits for EOF on stdin.
func helperName() {
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: this thread is not reused afterwards
		errc <- SetProcessName(os.Getenv("HELPER_NAME"))
	}()
	if err := <-errc; err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("named")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	os.Exit(0)
}

// helperLock opens the instance dir and holds it until killed or stdin ends.
func helperLock() {
	d, err := Open(os.Getenv("HELPER_ROOT"), os.Getenv("HELPER_APP_ID"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println("locked")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	d.Close()
	os.Exit(0)
}

// startHelper runs the test binary in a helper mode and returns it with the first line
// it printed. The helper exits when the test ends (stdin closed) or is killed.
func startHelper(t *testing.T, mode string, env ...string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	// GORACE spares a -race build the detector's 1 s sleep at exit.
	cmd.Env = append(append(os.Environ(), helperEnv+"="+mode, "GORACE=atexit_sleep_ms=0"), env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			stdin.Close()
			_ = cmd.Wait()
		})
	}
	t.Cleanup(func() { cmd.Process.Kill(); stop() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		stop()
		t.Fatalf("helper %s: no output (%v); stderr: %s", mode, err, stderr.String())
	}
	return cmd, strings.TrimSpace(line)
}

func uniqueID(t *testing.T) string {
	return fmt.Sprintf("t%d-%d-%s", os.Getpid(), time.Now().UnixNano()%1e9, strings.ReplaceAll(t.Name(), "/", "_"))
}

func TestValidateID(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"a", true},
		{"cam-01_A.b", true},
		{strings.Repeat("x", 64), true},
		{"", false},
		{strings.Repeat("x", 65), false},
		{".", false},
		{"..", false},
		{"...", true},
		{"a/b", false},
		{"a b", false},
		{"é", false},
		{"a\x00", false},
		{"$(id)", false},
	} {
		err := ValidateID(tc.id)
		if (err == nil) != tc.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestTagHelpers(t *testing.T) {
	if got := Tag("x1"); got != "APP_ID=x1" {
		t.Fatalf("Tag = %q", got)
	}
	args := []string{"/bin/sup", "APP_ID=x1", "-c", "a.txt"}
	if !HasTag(args, "x1") || HasTag(args, "x") || HasTag(args[:1], "x1") {
		t.Fatal("HasTag wrong")
	}
	if HasTag([]string{"/bin/sup", "-c", "APP_ID=x1"}, "x1") {
		t.Fatal("HasTag must only accept the tag right after argv[0]")
	}
	got := StripTag(args)
	if strings.Join(got, " ") != "/bin/sup -c a.txt" {
		t.Fatalf("StripTag = %q", got)
	}
	if args[1] != "APP_ID=x1" {
		t.Fatal("StripTag modified its input")
	}
	// argv[0] is never stripped, whatever it is.
	if got := StripTag([]string{"APP_ID=z"}); len(got) != 1 {
		t.Fatalf("StripTag stripped argv[0]: %q", got)
	}
}

func TestReexecPutsTagOnCommandLine(t *testing.T) {
	id := uniqueID(t)
	cmd, line := startHelper(t, "reexec", "HELPER_APP_ID="+id)
	var rep struct {
		Args, Stripped []string
		PID            int
	}
	if err := json.Unmarshal([]byte(line), &rep); err != nil {
		t.Fatalf("helper said %q: %v", line, err)
	}
	if rep.PID != cmd.Process.Pid {
		t.Fatalf("re-exec changed pid: %d, started %d", rep.PID, cmd.Process.Pid)
	}
	if len(rep.Args) != 3 || rep.Args[1] != "APP_ID="+id || rep.Args[2] != "-test.run=^$" {
		t.Fatalf("args after re-exec: %q", rep.Args)
	}
	if len(rep.Stripped) != 2 || rep.Stripped[1] != "-test.run=^$" {
		t.Fatalf("stripped args: %q", rep.Stripped)
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if len(argv) < 2 || argv[1] != "APP_ID="+id {
		t.Fatalf("/proc cmdline = %q", argv)
	}
	out, err := exec.Command("pgrep", "-f", "APP_ID="+id).Output()
	if err != nil {
		t.Fatalf("pgrep -f APP_ID=%s: %v", id, err)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("pgrep found %q, want exactly %d", got, cmd.Process.Pid)
	}
}

func TestReexecRejectsBadID(t *testing.T) {
	if err := Reexec("a/b"); err == nil {
		t.Fatal("Reexec accepted a bad id")
	}
}

func TestSetProcessName(t *testing.T) {
	for _, tc := range []struct{ name, want string }{
		{"ds-sup-x", "ds-sup-x"},
		{"ds-supervisor-cam42-long", "ds-supervisor-c"},
		{"ds-supervisor-é", "ds-supervisor-"}, // never cut inside a UTF-8 sequence
	} {
		cmd, line := startHelper(t, "name", "HELPER_NAME="+tc.name)
		if line != "named" {
			t.Fatalf("helper: %q", line)
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", cmd.Process.Pid))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(comm)); got != tc.want {
			t.Errorf("SetProcessName(%q): comm = %q, want %q", tc.name, got, tc.want)
		}
		out, err := exec.Command("pgrep", "-x", tc.want).Output()
		if err != nil || !strings.Contains(" "+strings.Join(strings.Fields(string(out)), " ")+" ", " "+strconv.Itoa(cmd.Process.Pid)+" ") {
			t.Errorf("pgrep -x %q = %q (%v), want pid %d", tc.want, out, err, cmd.Process.Pid)
		}
	}
	if err := SetProcessName(""); err == nil {
		t.Error("empty name accepted")
	}
}

func TestOpenCreatesDirsWithModes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "ds")
	d, err := Open(root, "inst-1")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	assertMode(t, root, 0o755)
	assertMode(t, filepath.Join(root, "inst-1"), 0o700)
	if d.Path() != filepath.Join(root, "inst-1") || d.SocketPath() != filepath.Join(root, "inst-1", "engine.sock") {
		t.Fatalf("paths: %s %s", d.Path(), d.SocketPath())
	}
	if d.ID() != "inst-1" {
		t.Fatalf("ID = %q", d.ID())
	}
}

func TestOpenFixesExistingDirMode(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "x"), 0o777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "x"), 0o777)
	d, err := Open(root, "x")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	assertMode(t, filepath.Join(root, "x"), 0o700)
}

func TestOpenRejects(t *testing.T) {
	root := t.TempDir()
	if _, err := Open(root, "../x"); err == nil {
		t.Error("bad id accepted")
	}
	if err := os.WriteFile(filepath.Join(root, "file"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, "file"); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file as instance dir: %v", err)
	}
	if err := os.Symlink(t.TempDir(), filepath.Join(root, "link")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(root, "link"); err == nil {
		t.Error("a symlink as instance dir was accepted")
	}
	long := filepath.Join(root, strings.Repeat("r", 60))
	if _, err := Open(long, strings.Repeat("i", 60)); err == nil || !strings.Contains(err.Error(), "socket path") {
		t.Errorf("over-long socket path: %v", err)
	}
}

func TestLockInProcess(t *testing.T) {
	root := t.TempDir()
	d, err := Open(root, "one")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Open(root, "one")
	want := fmt.Sprintf("instance one already running (pid %d)", os.Getpid())
	if err == nil || !errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), want) {
		t.Fatalf("second Open: %v, want %q", err, want)
	}
	other, err := Open(root, "two")
	if err != nil {
		t.Fatalf("another id must not be blocked: %v", err)
	}
	other.Close()
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	d2, err := Open(root, "one")
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	d2.Close()
}

func TestLockAcrossProcessesAndAfterCrash(t *testing.T) {
	root := t.TempDir()
	id := "crashy"
	cmd, line := startHelper(t, "lock", "HELPER_ROOT="+root, "HELPER_APP_ID="+id)
	if line != "locked" {
		t.Fatalf("helper: %q", line)
	}
	_, err := Open(root, id)
	want := fmt.Sprintf("instance %s already running (pid %d)", id, cmd.Process.Pid)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Open while held elsewhere: %v, want %q", err, want)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	d, err := Open(root, id)
	if err != nil {
		t.Fatalf("Open after the holder was killed: %v", err)
	}
	d.Close()
}

func TestPIDFiles(t *testing.T) {
	d, err := Open(t.TempDir(), "p")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.WritePID("supervisor", 1234); err != nil {
		t.Fatal(err)
	}
	if err := d.WritePID("engine", 99); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"supervisor": "1234\n", "engine": "99\n"} {
		got, err := os.ReadFile(filepath.Join(d.Path(), name+".pid"))
		if err != nil || string(got) != want {
			t.Fatalf("%s.pid = %q, %v", name, got, err)
		}
	}
	if err := d.WritePID("../evil", 1); err == nil {
		t.Fatal("bad pid file name accepted")
	}
	if err := d.WritePID("x", 0); err == nil {
		t.Fatal("pid 0 accepted")
	}
	d.RemovePID("engine")
	if _, err := os.Stat(filepath.Join(d.Path(), "engine.pid")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("engine.pid after RemovePID: %v", err)
	}
	d.RemovePID("engine") // twice is fine
	if err := d.WriteState([]byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	// A stale socket file (the engine normally removes it) goes with Close.
	if err := os.WriteFile(d.SocketPath(), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(d.Path())
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, ","); got != "instance.lock,state.json" {
		t.Fatalf("left after Close: %s", got)
	}
	if err := d.WriteState([]byte("x")); err == nil {
		t.Fatal("WriteState after Close succeeded")
	}
}

func TestWriteStateAtomic(t *testing.T) {
	d, err := Open(t.TempDir(), "s")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	small := []byte(`{"v":"small"}`)
	big := bytes.Repeat([]byte("b"), 4<<20)
	if err := d.WriteState(small); err != nil {
		t.Fatal(err)
	}
	assertMode(t, d.StatePath(), 0o600)

	// A reader polling during rewrites only ever sees one complete version.
	stop := make(chan struct{})
	bad := make(chan string, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			got, err := os.ReadFile(d.StatePath())
			if err != nil || !(bytes.Equal(got, small) || bytes.Equal(got, big)) {
				select {
				case bad <- fmt.Sprintf("read %d bytes, err %v", len(got), err):
				default:
				}
				return
			}
		}
	}()
	for i := 0; i < 20; i++ {
		data := small
		if i%2 == 0 {
			data = big
		}
		if err := d.WriteState(data); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	select {
	case msg := <-bad:
		t.Fatalf("torn state.json: %s", msg)
	default:
	}
	entries, _ := os.ReadDir(d.Path())
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Fatalf("temp file left: %s", e.Name())
		}
	}
}

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != want {
		t.Fatalf("%s mode %o, want %o", path, fi.Mode().Perm(), want)
	}
}
