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

// TestEngineWorkDirSpawned runs the supervisor with the real engine from a cwd of its
// own and reads the engine's cwd from /proc: the config's directory by default,
// DS_ENGINE_WORKDIR when set; a missing one is a settings error (exit 2).
func TestEngineWorkDirSpawned(t *testing.T) {
	engine := gstEngine(t)
	dir, _ := filepath.EvalSymlinks(shortDir(t, "wd"))
	cfgDir, work, cwd := filepath.Join(dir, "cfg"), filepath.Join(dir, "work"), filepath.Join(dir, "cwd")
	for _, d := range []string{cfgDir, work, cwd} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, cfgDir, "app.txt", engineConfig, 0o644)

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
			cmd := supervisorCmd(dir, appID, engine, &stderr, "-c", "../cfg/app.txt")
			cmd.Dir = cwd
			cmd.Env = append(cmd.Env, "DS_ENGINE_WORKDIR="+tc.workdir)
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
