// Package queue is an unbounded FIFO for handing items from a producer that must
// never block (a socket reader) to a consumer that takes them at its own pace.
package queue

import "sync"

// Unbounded is a FIFO without a size limit, safe for concurrent use. The zero value
// is not usable; call New.
type Unbounded[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	wake   chan struct{} // capacity 1: a pending wake-up
}

// New returns an empty queue.
func New[T any]() *Unbounded[T] {
	return &Unbounded[T]{wake: make(chan struct{}, 1)}
}

// Push appends v; it never blocks. It returns false (and drops v) after Close.
func (q *Unbounded[T]) Push(v T) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.signal()
	return true
}

// Close marks the end of the items; those queued can still be taken.
func (q *Unbounded[T]) Close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// TakeAll removes and returns every queued item, in order, and whether the queue is
// closed (no item will follow the ones returned).
func (q *Unbounded[T]) TakeAll() (items []T, closed bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	items, q.items = q.items, nil
	return items, q.closed
}

// Wake receives a value after a Push or Close since the last receive: a consumer
// that found nothing to take waits on it, then calls TakeAll again.
func (q *Unbounded[T]) Wake() <-chan struct{} { return q.wake }

func (q *Unbounded[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
