package queue

import (
	"sync"
	"testing"
)

// Items pushed from several goroutines all come out, each producer's in order, and
// nothing is taken after the close has been seen.
func TestUnboundedConcurrent(t *testing.T) {
	q := New[[2]int]()
	const producers, each = 4, 10000
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				q.Push([2]int{p, i})
			}
		}()
	}
	go func() { wg.Wait(); q.Close() }()
	next := make([]int, producers)
	for {
		items, closed := q.TakeAll()
		for _, it := range items {
			if it[1] != next[it[0]] {
				t.Fatalf("producer %d: got %d, want %d", it[0], it[1], next[it[0]])
			}
			next[it[0]]++
		}
		if closed && len(items) == 0 {
			break
		}
		if len(items) == 0 {
			<-q.Wake()
		}
	}
	for p, n := range next {
		if n != each {
			t.Fatalf("producer %d: %d items, want %d", p, n, each)
		}
	}
	if q.Push([2]int{}) {
		t.Fatal("Push after Close accepted")
	}
}
