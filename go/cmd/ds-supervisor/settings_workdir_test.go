package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// asSupervisor makes the test binary run main() instead of the tests, so a test can
// start a whole supervisor (and its re-exec) from it.
const asSupervisor = "DS_SUPERVISOR_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(asSupervisor) != "" {
		os.Exit(run())
	}
	os.Exit(m.Run())
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

// TestEngineWorkDirSpawned runs the supervisor with the real engine from a cwd of its
// own and reads the engine's cwd from /proc: the config's directory by default,
// DS_ENGINE_WORKDIR when set; a missing one is a settings error (exit 2).
func TestEngineWorkDirSpawned(t *testing.T) {
	engine := gstEngine(t)
	dir, err := os.MkdirTemp("", "wd") // short: the instance dir holds a socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	dir, _ = filepath.EvalSymlinks(dir)
	cfgDir, work, cwd := filepath.Join(dir, "cfg"), filepath.Join(dir, "work"), filepath.Join(dir, "cwd")
	for _, d := range []string{cfgDir, work, cwd} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(cfgDir, "app.txt")
	if err := os.WriteFile(cfg, []byte("[source0]\nenable=1\ntype=3\nuri=file:///dev/null\nnum-sources=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	for i, tc := range []struct {
		name, workdir, want string
	}{
		{"default", "", cfgDir},
		{"explicit", work, work},
		{"missing", filepath.Join(dir, "none"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			appID := fmt.Sprintf("wd%d", i)
			var stderr bytes.Buffer
			// The config is given relative to the supervisor's cwd, as a user would.
			cmd := exec.Command(os.Args[0], "-c", "../cfg/app.txt")
			cmd.Dir = cwd
			cmd.Stderr = &stderr
			cmd.Env = append(os.Environ(), asSupervisor+"=1", "APP_ID="+appID, "DS_ENGINE="+engine,
				"DS_ENGINE_WORKDIR="+tc.workdir, "DS_WS_URL=ws://127.0.0.1:1/ws", // nothing listens: it retries
				"DS_LOG_ROOT="+filepath.Join(dir, "logs"), "DS_INSTANCE_ROOT="+filepath.Join(dir, "inst"))
			p := startSupervisor(t, cmd, &stderr, dir, appID)
			if tc.want == "" {
				select {
				case <-p.exited:
					var ee *exec.ExitError
					if !errors.As(p.err, &ee) || ee.ExitCode() != exitSettings || !strings.Contains(stderr.String(), "engine-workdir") {
						t.Fatalf("exit %v, stderr %q; want exit 2 naming engine-workdir", p.err, stderr.String())
					}
				case <-time.After(15 * time.Second):
					t.Fatal("supervisor with a missing engine workdir did not exit")
				}
				return
			}
			pid := p.enginePID(t)
			got, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("engine cwd %s, want %s", got, tc.want)
			}
			p.stop(t)
		})
	}
}
