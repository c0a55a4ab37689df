// Package pathcheck tells whether an input path may be handed to the engine, without
// the caller ever waiting for the file system.
//
// A FIFO blocks open() until a writer comes, and a file on a mount that stops answering
// (a network share) blocks stat() and open() in the kernel for as long as the mount
// does not answer, whatever goroutine asks; the engine would block in the same calls.
// So a Checker runs each check on a goroutine of its own and answers by a deadline:
// "not a regular file" (a FIFO, a directory, a device, a socket), "did not answer", or
// go ahead. A check stuck in the kernel keeps its goroutine (and an OS thread) until the
// kernel lets go: each slot may have PerSlot of them at most, and a further check of that
// slot waits for one to come back within its own deadline.
package pathcheck

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// PerSlot is how many checks of one slot may be in the kernel at once: one stuck on a
// hung mount, and one for the slot's next file (often on another mount).
const PerSlot = 2

// ErrNotRegular is the check's verdict on a FIFO, a directory, a device or a socket.
var ErrNotRegular = errors.New("not a regular file")

// TimeoutError is the verdict on a path that did not answer within the deadline.
type TimeoutError struct{ After time.Duration }

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("path did not answer within %v", e.After)
}

// Result is the answer to one check: Err is nil to go ahead, else the reason the file
// must fail (ErrNotRegular or a *TimeoutError, wrapped with the path: "not a regular
// file: /x/a.mp4").
type Result struct {
	Slot  int
	Token uint64 // the caller's, from Check
	Path  string
	Err   error
}

// Func checks one path; it may block in the kernel for as long as the path does.
type Func func(path string) error

// Local is the check the engines need: stat() says a regular file (a path stat() cannot
// read, such as a missing file, is left to the engine, which says why), and open() with
// O_NONBLOCK answers (a mount may answer stat() from its cache and hang in open()).
func Local(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if !fi.Mode().IsRegular() {
		return ErrNotRegular
	}
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC|syscall.O_NOCTTY, 0)
	if err == nil {
		syscall.Close(fd)
	}
	return nil
}

// Checker checks paths for a fixed number of slots. Its methods may be called from one
// goroutine at a time.
type Checker struct {
	timeout time.Duration
	check   Func
	slots   []chan struct{} // a place per check in the kernel
}

// New returns a Checker of slots slots with the given deadline; check nil is Local.
func New(slots int, timeout time.Duration, check Func) *Checker {
	if check == nil {
		check = Local
	}
	c := &Checker{timeout: timeout, check: check, slots: make([]chan struct{}, slots)}
	for i := range c.slots {
		c.slots[i] = make(chan struct{}, PerSlot)
	}
	return c
}

// Timeout is the deadline of each check.
func (c *Checker) Timeout() time.Duration { return c.timeout }

// Check checks path for slot off the caller's goroutine and sends one Result to out
// within the deadline (out is read by the caller's loop), unless ctx ends first: then
// nothing is sent. It never blocks.
func (c *Checker) Check(ctx context.Context, slot int, token uint64, path string, out chan<- Result) {
	go func() {
		res := Result{Slot: slot, Token: token, Path: path}
		if err := c.run(ctx, slot, path); err != nil {
			res.Err = fmt.Errorf("%w: %s", err, path)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- res:
		case <-ctx.Done():
		}
	}()
}

func (c *Checker) run(ctx context.Context, slot int, path string) error {
	deadline := time.NewTimer(c.timeout)
	defer deadline.Stop()
	place := c.slots[slot]
	select {
	case place <- struct{}{}:
	case <-deadline.C:
		return &TimeoutError{After: c.timeout}
	case <-ctx.Done():
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		defer func() { <-place }()
		done <- c.check(path)
	}()
	select {
	case err := <-done:
		return err
	case <-deadline.C:
		return &TimeoutError{After: c.timeout}
	case <-ctx.Done():
		return ctx.Err()
	}
}
