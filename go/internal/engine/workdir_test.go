package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// engineCwd reads the working directory of a running engine from /proc.
func engineCwd(t *testing.T, e *Engine) string {
	t.Helper()
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", e.PID()))
	if err != nil {
		t.Fatal(err)
	}
	return cwd
}

func realPath(t *testing.T, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// chdir changes the test process's cwd until the test ends (no test here runs in
// parallel; t.Chdir needs Go 1.24).
func chdir(t *testing.T, dir string) {
	t.Helper()
	old, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Chdir(old); err != nil {
			panic(err)
		}
	})
}

func TestWorkDir(t *testing.T) {
	t.Run("explicit, relative paths kept", func(t *testing.T) {
		// Config and socket given relative to the supervisor's cwd; the engine runs
		// elsewhere and must still get paths that name the same files.
		here := shortDir(t)
		chdir(t, here)
		work := shortDir(t)
		cfg, out := fakeConfig(t, "normal")
		cfg.ConfigPath = "cfg.txt"
		cfg.SocketPath = "e.sock"
		cfg.WorkDir = work
		e, err := Start(context.Background(), cfg)
		if err != nil {
			t.Fatalf("Start: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = e.Shutdown(context.Background()); drain(e.Events()) })
		if got, want := engineCwd(t, e), realPath(t, work); got != want {
			t.Errorf("engine cwd %s, want %s", got, want)
		}
		if want := "-c " + filepath.Join(realPath(t, here), "cfg.txt"); !strings.Contains(out.String(), want) {
			t.Errorf("engine arguments %q lack %q", out, want)
		}
	})
	t.Run("empty keeps the supervisor's", func(t *testing.T) {
		here := shortDir(t)
		chdir(t, here)
		e, _ := startFake(t, "normal")
		if got, want := engineCwd(t, e), realPath(t, here); got != want {
			t.Errorf("engine cwd %s, want %s", got, want)
		}
	})
	t.Run("unusable", func(t *testing.T) {
		dir := shortDir(t)
		file := filepath.Join(dir, "f")
		if err := os.WriteFile(file, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ dir, want string }{
			{filepath.Join(dir, "gone"), "work dir: stat " + filepath.Join(dir, "gone") + ": no such file"},
			{file, "work dir " + file + ": not a directory"},
		} {
			cfg, _ := fakeConfig(t, "normal")
			cfg.WorkDir = tc.dir
			if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Start = %v, want an error containing %q", err, tc.want)
			}
		}
	})
}
