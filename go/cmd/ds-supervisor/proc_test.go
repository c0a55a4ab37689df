package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// supervisorProc is a supervisor started by a test; it is stopped (SIGTERM, then
// SIGKILL after 15 s) when the test ends.
type supervisorProc struct {
	cmd     *exec.Cmd
	stderr  *bytes.Buffer
	exited  chan struct{} // closed once err is set
	err     error
	instDir string // <DS_INSTANCE_ROOT>/<APP_ID>
}

// startSupervisor starts cmd (from supervisorCmd, or one built alike) for app appID
// under dir.
func startSupervisor(t *testing.T, cmd *exec.Cmd, stderr *bytes.Buffer, dir, appID string) *supervisorProc {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &supervisorProc{cmd: cmd, stderr: stderr, exited: make(chan struct{}),
		instDir: filepath.Join(dir, "inst", appID)}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// enginePID waits for the engine.pid the supervisor writes once its engine is up
// (it holds the instance lock by then).
func (p *supervisorProc) enginePID(t *testing.T) int {
	t.Helper()
	pidFile := filepath.Join(p.instDir, "engine.pid")
	for deadline := time.Now().Add(20 * time.Second); ; {
		if b, err := os.ReadFile(pidFile); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("supervisor exited (%v) before starting the engine: %s", p.err, p.stderr.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s: %s", pidFile, p.stderr.String())
		}
	}
}

// stop sends SIGTERM and fails unless the supervisor exits 0 within 15 s.
func (p *supervisorProc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			t.Errorf("exit after SIGTERM: %v; stderr %s", p.err, p.stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Error("no exit after SIGTERM")
	}
}
