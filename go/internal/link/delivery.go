package link

import (
	"sync"
	"time"
)

// A server that sends no execute_ack.last_seq cannot say what it missed, so
// the link works it out from what each connection proved:
//
//   - A pong proves that the peer's WebSocket layer read every frame written
//     before its ping (TCP keeps order, and the peer reads frames in order).
//   - A frame read is not yet a frame handled: the peer's application may
//     still hold it in a queue. Anything the peer did at least HandleWindow
//     later (a pong, a frame, closing the connection) proves it was alive long
//     enough to handle it.
//
// A frame is therefore taken as handled when a pong confirmed it at least
// HandleWindow before the last sign of life of the peer; every later retained
// frame is written again, under its seq, after the next handshake.

// point is a pong: every frame up to seq was read by the peer at.
type point struct {
	seq uint64
	at  time.Time
}

// evidence is what one connection proved about delivery. Safe for concurrent use.
type evidence struct {
	window time.Duration

	mu     sync.Mutex
	heard  time.Time // last pong or frame from the peer
	closed time.Time // when the peer was seen to end the connection; zero if not
	// points holds the pongs, oldest first. All but the first are younger
	// than window before heard: older ones are settled by heard already, and
	// only the newest of those matters.
	points []point
}

// pong records a pong to a ping written after every frame up to seq.
func (e *evidence) pong(seq uint64, at time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hear(at)
	if n := len(e.points); n > 0 && e.points[n-1].seq >= seq {
		return // nothing new confirmed; the older time is the stronger proof
	}
	e.points = append(e.points, point{seq: seq, at: at})
	cut := e.heard.Add(-e.window)
	i := 0
	for i+1 < len(e.points) && !e.points[i+1].at.After(cut) {
		i++
	}
	if i > 0 {
		n := copy(e.points, e.points[i:])
		e.points = e.points[:n]
	}
}

// frame records a frame received from the peer.
func (e *evidence) frame(at time.Time) {
	e.mu.Lock()
	e.hear(at)
	e.mu.Unlock()
}

// peerClosed records that the peer ended the connection at (its process
// exited or closed the socket): it was alive until then.
func (e *evidence) peerClosed(at time.Time) {
	e.mu.Lock()
	e.closed = at
	e.mu.Unlock()
}

func (e *evidence) hear(at time.Time) {
	if at.After(e.heard) {
		e.heard = at
	}
}

// handled returns the highest seq that the peer's application has handled on
// this evidence (0 when nothing is proven).
func (e *evidence) handled() uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	end := e.heard
	if e.closed.After(end) {
		end = e.closed
	}
	cut := end.Add(-e.window)
	var seq uint64
	for _, p := range e.points {
		if p.at.After(cut) {
			break
		}
		seq = p.seq
	}
	return seq
}
