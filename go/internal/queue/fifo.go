package queue

// FIFO is an unbounded first-in first-out queue for one owner (not safe for concurrent
// use) that reuses its backing array, so a long-lived queue that is often drained does
// not keep reallocating. The zero value is an empty queue.
type FIFO[T any] struct {
	items []T
	head  int
}

// Len is the number of items queued.
func (q *FIFO[T]) Len() int { return len(q.items) - q.head }

// Push appends v.
func (q *FIFO[T]) Push(v T) { q.items = append(q.items, v) }

// Front returns the oldest item without removing it; false when empty.
func (q *FIFO[T]) Front() (v T, ok bool) {
	if q.head == len(q.items) {
		return v, false
	}
	return q.items[q.head], true
}

// Pop removes the oldest item (nothing when empty).
func (q *FIFO[T]) Pop() {
	if q.head == len(q.items) {
		return
	}
	var zero T
	q.items[q.head] = zero
	q.head++
	switch {
	case q.head == len(q.items):
		q.items, q.head = q.items[:0], 0
	case q.head > 1024 && q.head*2 > len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
}
