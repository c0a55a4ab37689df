// Package backoff computes the delays between retries: a ceiling that doubles from a
// minimum up to a maximum, and, for peers that must not retry in lockstep, a delay
// drawn below it (full jitter). The link's reconnects and the engine's restarts both
// take their delays from here.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Ceiling returns the delay ceiling before retry n (0 for the first): min doubled n
// times, at most max. A min of 0 or less gives max.
func Ceiling(min, max time.Duration, n int) time.Duration {
	c := min
	for i := 0; i < n && c < max; i++ {
		c *= 2
	}
	if c > max || c <= 0 {
		c = max
	}
	return c
}

// Exponential yields the delays of successive retries: before the nth (from 0) the
// ceiling is Ceiling(Min, Max, n); with Jitter the delay is drawn uniformly in
// [0, ceiling], so that instances restarted together spread their retries, otherwise
// it is the ceiling. The zero value retries at once; one goroutine uses it.
type Exponential struct {
	Min, Max time.Duration
	Jitter   bool
	attempt  int
}

// Next returns the delay before the next retry and the ceiling it was drawn under, and
// counts the retry.
func (b *Exponential) Next() (delay, ceiling time.Duration) {
	ceiling = Ceiling(b.Min, b.Max, b.attempt)
	b.attempt++
	if !b.Jitter || ceiling <= 0 {
		return ceiling, ceiling
	}
	return time.Duration(rand.Int64N(int64(ceiling) + 1)), ceiling
}

// Reset starts the sequence again from Min (after a success).
func (b *Exponential) Reset() { b.attempt = 0 }
