package queue

// Ring keeps the newest items pushed into it, at most its capacity: pushing into a
// full ring drops the oldest. It is not safe for concurrent use; its owner locks.
type Ring[T any] struct {
	buf   []T
	start int
	n     int
}

// NewRing returns an empty ring of the given capacity (at least 1).
func NewRing[T any](capacity int) *Ring[T] {
	return &Ring[T]{buf: make([]T, max(capacity, 1))}
}

// Len is the number of items kept.
func (r *Ring[T]) Len() int { return r.n }

// Cap is the most items kept.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Push appends v, dropping and returning the oldest item when the ring was full.
func (r *Ring[T]) Push(v T) (dropped T, wasFull bool) {
	if r.n == len(r.buf) {
		dropped, wasFull = r.PopOldest()
	}
	r.buf[(r.start+r.n)%len(r.buf)] = v
	r.n++
	return dropped, wasFull
}

// PopOldest removes and returns the oldest item; false when the ring is empty.
func (r *Ring[T]) PopOldest() (v T, ok bool) {
	if r.n == 0 {
		return v, false
	}
	var zero T
	v, r.buf[r.start] = r.buf[r.start], zero // let go of what it references
	r.start = (r.start + 1) % len(r.buf)
	r.n--
	return v, true
}

// At returns the i-th kept item, 0 being the oldest.
func (r *Ring[T]) At(i int) T { return r.buf[(r.start+i)%len(r.buf)] }

// Items returns a copy of the kept items, oldest first.
func (r *Ring[T]) Items() []T {
	out := make([]T, r.n)
	for i := range out {
		out[i] = r.At(i)
	}
	return out
}
