package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cityeyelab/ds-analysis/go/internal/instance"
)

// TestExitAlreadyRunning: a second supervisor with the APP_ID of a running one exits 5
// (not 2, bad settings) naming the holder's pid, and leaves the first one running.
func TestExitAlreadyRunning(t *testing.T) {
	dir := shortDir(t, "ex")
	cfg := writeFile(t, dir, "app.txt", engineConfig, 0o644)

	t.Run("lock held", func(t *testing.T) {
		// This process holds the instance lock; the engine is never reached.
		held, err := instance.Open(filepath.Join(dir, "inst"), "dup")
		if err != nil {
			t.Fatal(err)
		}
		defer held.Close()
		var stderr bytes.Buffer
		err = supervisorCmd(dir, "dup", "/bin/true", &stderr, "-c", cfg).Run()
		if code := exitCode(t, err); code != exitRunning || exitRunning != 5 {
			t.Fatalf("exit %d, want 5; stderr %q", code, stderr.String())
		}
		want := "instance dup already running (pid " + strconv.Itoa(os.Getpid()) + ")"
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q, want it to contain %q", stderr.String(), want)
		}
	})

	t.Run("bad settings stay 2", func(t *testing.T) {
		var stderr bytes.Buffer
		err := supervisorCmd(dir, "bad", "/bin/true", &stderr, "-c", filepath.Join(dir, "none.txt")).Run()
		if code := exitCode(t, err); code != exitSettings {
			t.Fatalf("exit %d, want 2; stderr %q", code, stderr.String())
		}
	})

	t.Run("metrics address taken or bad", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		for _, tc := range []struct{ addr, want string }{
			{ln.Addr().String(), "metrics: listen tcp " + ln.Addr().String()},
			{"127.0.0.1", `metrics-addr "127.0.0.1": want host:port`},
		} {
			var stderr bytes.Buffer
			cmd := supervisorCmd(dir, "metr", "/bin/true", &stderr, "-c", cfg, "--metrics-addr", tc.addr)
			if code := exitCode(t, cmd.Run()); code != exitSettings || !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("--metrics-addr %s: exit %d, stderr %q; want 2 and %q", tc.addr, code, stderr.String(), tc.want)
			}
		}
	})

	t.Run("two supervisors", func(t *testing.T) {
		engine := gstEngine(t)
		var first bytes.Buffer
		cmd := supervisorCmd(dir, "twice", engine, &first, "-c", cfg)
		p := startSupervisor(t, cmd, &first, dir, "twice")
		p.enginePID(t) // the first one holds the lock and its engine is up
		var second bytes.Buffer
		err := supervisorCmd(dir, "twice", engine, &second, "-c", cfg).Run()
		if code := exitCode(t, err); code != exitRunning {
			t.Fatalf("second supervisor: exit %d, want 5; stderr %q", code, second.String())
		}
		if want := "instance twice already running (pid " + strconv.Itoa(cmd.Process.Pid) + ")"; !strings.Contains(second.String(), want) {
			t.Errorf("stderr %q, want it to contain %q", second.String(), want)
		}
		select {
		case <-p.exited:
			t.Fatalf("the first supervisor exited (%v) when the second was refused", p.err)
		default:
		}
		p.stop(t)
	})
}
