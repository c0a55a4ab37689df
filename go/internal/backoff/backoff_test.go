package backoff

import (
	"testing"
	"time"
)

func TestCeilings(t *testing.T) {
	b := Exponential{Min: 250 * time.Millisecond, Max: 10 * time.Second}
	want := []time.Duration{250, 500, 1000, 2000, 4000, 8000, 10000, 10000}
	for i, w := range want {
		d, c := b.Next()
		if c != w*time.Millisecond || d != c {
			t.Fatalf("attempt %d: delay %v ceiling %v, want %v", i, d, c, w*time.Millisecond)
		}
	}
	for i := 0; i < 100; i++ {
		if _, c := b.Next(); c != 10*time.Second {
			t.Fatalf("ceiling after many attempts: %v", c)
		}
	}
	b.Reset()
	if _, c := b.Next(); c != 250*time.Millisecond {
		t.Fatalf("after reset: %v", c)
	}
}

// The engine's restart delays (README: 0.5 s → 10 s), by restarts already made.
func TestCeilingOfRestarts(t *testing.T) {
	min, max := 500*time.Millisecond, 10*time.Second
	want := []time.Duration{500, 1000, 2000, 4000, 8000, 10000, 10000}
	for n, w := range want {
		if c := Ceiling(min, max, n); c != w*time.Millisecond {
			t.Errorf("Ceiling(%v, %v, %d) = %v, want %v", min, max, n, c, w*time.Millisecond)
		}
	}
	if c := Ceiling(0, max, 3); c != max {
		t.Errorf("Ceiling without a minimum = %v, want the maximum", c)
	}
}

// Jittered delays lie in [0, ceiling] and spread over it: their mean at each ceiling
// is about half of it (4,000 draws put the mean within 2 % of that, 21 standard
// deviations inside the bounds checked).
func TestJitterSpreads(t *testing.T) {
	b := Exponential{Min: 2 * time.Millisecond, Max: 40 * time.Millisecond, Jitter: true}
	for level := 0; level < 6; level++ {
		const draws = 4000
		var sum, ceiling time.Duration
		for i := 0; i < draws; i++ {
			b.Reset()
			for j := 0; j < level; j++ {
				b.Next()
			}
			d, c := b.Next()
			if d < 0 || d > c {
				t.Fatalf("delay %v outside [0, %v]", d, c)
			}
			sum, ceiling = sum+d, c
		}
		if mean := sum / draws; mean < ceiling*4/10 || mean > ceiling*6/10 {
			t.Errorf("ceiling %v: mean delay %v, want about half", ceiling, mean)
		}
	}
}
