package queue

import (
	"slices"
	"testing"
)

// A full ring drops its oldest item for each new one and keeps the order.
func TestRingKeepsTheNewest(t *testing.T) {
	r := NewRing[int](3)
	for i := 1; i <= 3; i++ {
		if _, full := r.Push(i); full {
			t.Fatalf("push %d: full too early", i)
		}
	}
	if d, full := r.Push(4); !full || d != 1 {
		t.Fatalf("push 4 dropped %d, %v; want 1, true", d, full)
	}
	if got := r.Items(); !slices.Equal(got, []int{2, 3, 4}) || r.Len() != 3 || r.Cap() != 3 {
		t.Fatalf("items %v len %d", got, r.Len())
	}
	if v, ok := r.PopOldest(); !ok || v != 2 || r.At(0) != 3 {
		t.Fatalf("pop %d %v, then At(0) %d", v, ok, r.At(0))
	}
	r.PopOldest()
	r.PopOldest()
	if _, ok := r.PopOldest(); ok || r.Len() != 0 || len(r.Items()) != 0 {
		t.Fatal("an empty ring popped an item")
	}
	if NewRing[string](0).Cap() != 1 {
		t.Fatal("capacity below 1 not raised to 1")
	}
}

// A popped slot no longer references its item (large frames must be freed).
func TestRingReleasesPopped(t *testing.T) {
	r := NewRing[*[1 << 10]byte](2)
	r.Push(new([1 << 10]byte))
	r.PopOldest()
	if r.buf[0] != nil {
		t.Fatal("popped item still referenced")
	}
}

// Items come out in order across the compactions of the backing array.
func TestFIFOOrder(t *testing.T) {
	var q FIFO[int]
	for i := 1; i <= 5000; i++ {
		q.Push(i)
		if i%3 == 0 {
			q.Pop()
		}
	}
	want := 5000/3 + 1
	for q.Len() > 0 {
		if v, _ := q.Front(); v != want {
			t.Fatalf("front %d, want %d", v, want)
		}
		q.Pop()
		want++
	}
	if _, ok := q.Front(); ok || want != 5001 {
		t.Fatalf("ended at %d", want)
	}
	q.Pop() // popping an empty queue does nothing
}
