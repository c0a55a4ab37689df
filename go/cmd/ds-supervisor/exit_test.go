package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/instance"
)

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

// TestExitAlreadyRunning: a second supervisor with the APP_ID of a running one exits 5
// (not 2, bad settings) naming the holder's pid, and leaves the first one running.
func TestExitAlreadyRunning(t *testing.T) {
	dir, err := os.MkdirTemp("", "ex") // short: the instance dir holds a socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfg, []byte("[source0]\nenable=1\ntype=3\nuri=file:///dev/null\nnum-sources=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

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
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(15 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		// engine.pid is written once the first one holds the lock and its engine is up.
		pidFile := filepath.Join(dir, "inst", "twice", "engine.pid")
		for deadline := time.Now().Add(20 * time.Second); ; {
			if _, err := os.Stat(pidFile); err == nil {
				break
			}
			select {
			case <-exited:
				t.Fatalf("first supervisor exited (%v): %s", waitErr, first.String())
			case <-time.After(10 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s: %s", pidFile, first.String())
			}
		}
		var second bytes.Buffer
		err := supervisorCmd(dir, "twice", engine, &second, "-c", cfg).Run()
		if code := exitCode(t, err); code != exitRunning {
			t.Fatalf("second supervisor: exit %d, want 5; stderr %q", code, second.String())
		}
		if want := "instance twice already running (pid " + strconv.Itoa(cmd.Process.Pid) + ")"; !strings.Contains(second.String(), want) {
			t.Errorf("stderr %q, want it to contain %q", second.String(), want)
		}
		select {
		case <-exited:
			t.Fatalf("the first supervisor exited (%v) when the second was refused", waitErr)
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
			if waitErr != nil {
				t.Errorf("first supervisor after SIGTERM: %v", waitErr)
			}
		case <-time.After(15 * time.Second):
			t.Error("first supervisor did not exit after SIGTERM")
		}
	})
}
