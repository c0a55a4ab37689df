package link

import "time"

// backoff yields reconnect delays: exponential ceilings min·2^attempt capped at
// max, with full jitter (a uniform delay in [0, ceiling]) so that several
// instances restarted together do not reconnect in lockstep.
type backoff struct {
	min, max time.Duration
	attempt  int
	rnd      func(n int64) int64 // uniform in [0, n)
}

// next returns the delay before the next attempt and the ceiling it was drawn
// under, and advances the attempt counter.
func (b *backoff) next() (delay, ceiling time.Duration) {
	ceiling = b.min
	for i := 0; i < b.attempt && ceiling < b.max; i++ {
		ceiling *= 2
	}
	if ceiling > b.max || ceiling <= 0 {
		ceiling = b.max
	}
	b.attempt++
	return time.Duration(b.rnd(int64(ceiling) + 1)), ceiling
}

// reset starts the sequence again from min (after a confirmed handshake).
func (b *backoff) reset() { b.attempt = 0 }
