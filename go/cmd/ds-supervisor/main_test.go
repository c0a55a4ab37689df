package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Helpers the tests of this package share.

// asSupervisor makes the test binary run main() instead of the tests, so a test can
// start a whole supervisor (and its re-exec) from it.
const asSupervisor = "DS_SUPERVISOR_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asSupervisor) != "" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// The tests' deepstream-app configs: one slot, which is all parseSettings reads, and
// one the real engine starts with (its source waits for start_analysis).
const (
	slotConfig   = "[source0]\nenable=1\n"
	engineConfig = "[source0]\nenable=1\ntype=3\nuri=file:///dev/null\nnum-sources=1\n"
)

// writeFile writes content to dir/name with mode perm and returns its path.
func writeFile(t *testing.T, dir, name, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// settingsFiles makes what parseSettings checks exists in a new directory: the config
// app.txt (slotConfig) and an executable ds-gst-engine.
func settingsFiles(t *testing.T) (dir, cfg, engine string) {
	t.Helper()
	dir = t.TempDir()
	return dir, writeFile(t, dir, "app.txt", slotConfig, 0o644), writeFile(t, dir, "ds-gst-engine", "#!/bin/sh\n", 0o755)
}

// shortDir returns a new directory with a short path (an instance dir under it holds
// a socket, whose path is limited), removed when the test ends.
func shortDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// gstEngine finds ds-gst-engine: DS_GST_ENGINE (make test-go sets it), else bin/.
func gstEngine(t *testing.T) string {
	if p := os.Getenv("DS_GST_ENGINE"); p != "" {
		return p
	}
	p, _ := filepath.Abs("../../../bin/ds-gst-engine")
	if _, err := os.Stat(p); err != nil {
		t.Skip("ds-gst-engine not built (make build) and DS_GST_ENGINE not set")
	}
	return p
}

// supervisorCmd is the test binary started as a supervisor (TestMain) with APP_ID appID
// and its files under dir.
func supervisorCmd(dir, appID, engine string, stderr *bytes.Buffer, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Stderr = stderr
	cmd.Env = append(os.Environ(), asSupervisor+"=1", "APP_ID="+appID, "DS_ENGINE="+engine,
		"DS_WS_URL=ws://127.0.0.1:1/ws", // nothing listens: it retries
		"DS_LOG_ROOT="+filepath.Join(dir, "logs"), "DS_INSTANCE_ROOT="+filepath.Join(dir, "inst"))
	return cmd
}

// exitCode is the exit status of a command that ended with err.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("wait: %v", err)
	}
	return ee.ExitCode()
}
