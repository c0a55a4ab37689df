package engine

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// spawn starts cmd and reaps it on a goroutine locked to its OS thread, then calls
// reaped with the exit status.
//
// Linux sends the parent death signal (Pdeathsig) when the *thread* that forked the
// child exits, not the process. The Go runtime ends a thread when a goroutine that
// locked it returns without unlocking, so if the fork ran on an ordinary thread,
// unrelated code calling runtime.LockOSThread later could end that thread and kill the
// engine. Forking from a goroutine that locks its thread and holds it until the child
// has been reaped means no other goroutine ever runs on that thread while the child
// lives; the thread ends (the goroutine returns still locked) only after the child is
// gone.
func spawn(cmd *exec.Cmd, reaped func(ExitStatus)) error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked, see above
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		err := cmd.Wait()
		reaped(exitStatus(cmd.ProcessState, err))
	}()
	return <-started
}

func exitStatus(ps *os.ProcessState, err error) ExitStatus {
	st := ExitStatus{Code: -1, Err: err}
	if ps == nil {
		return st
	}
	st.Code = ps.ExitCode()
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		st.Code = -1
		st.Signal = unix.SignalName(ws.Signal())
		if st.Signal == "" {
			st.Signal = ws.Signal().String()
		}
	}
	return st
}
