// Package link keeps the instance's WebSocket connection to the server.
//
// It dials, sends app_ready and waits for execute_ack on every connection,
// keeps a ping/pong heartbeat so that a half-open connection is noticed,
// reconnects forever with jittered exponential backoff, and delivers outgoing
// messages in order from an outbox that survives disconnections. Every frame
// it writes carries a "seq" (docs/protocol.md); seqs are assigned when a
// message is first written, so they increase in the order frames go out, and
// a message sent again (after a failed write, on the server's last_seq
// request, or because a server without last_seq may not have handled it:
// delivery.go) keeps its seq so that the server can drop the duplicate.
package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/backoff"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
	"github.com/cityeyelab/ds-analysis/go/internal/queue"
)

// Defaults for the zero fields of Config.
const (
	DefaultAckTimeout   = 10 * time.Second
	DefaultPingInterval = 5 * time.Second
	DefaultPingTimeout  = 5 * time.Second
	DefaultBackoffMin   = 250 * time.Millisecond
	DefaultBackoffMax   = time.Second
	DefaultHandleWindow = time.Second
	DefaultRetain       = 10000
	DefaultRetainBytes  = 4 << 20
	DefaultReadLimit    = protocol.MaxFrameBytes
)

// stableAfter is how long a confirmed connection must have lasted for the
// first reconnect attempt to go out at once; a shorter one backs off, so that
// a server that confirms and drops cannot make the link spin.
const stableAfter = time.Second

// closeTimeout bounds the close handshake on shutdown or rejection.
const closeTimeout = 2 * time.Second

// Config configures a Link. Zero durations and sizes take the defaults above.
type Config struct {
	// URL is the server's WebSocket URL (ws:// or wss://).
	URL string
	// Hello builds the app_ready JSON object for each connection (it should
	// carry a fresh request_id); the link adds "seq".
	Hello func() []byte
	// AckTimeout bounds the dial and the wait for execute_ack; past it the
	// connection is closed and retried.
	AckTimeout time.Duration
	// PingInterval is the heartbeat period; PingTimeout how long a pong may
	// take before the connection is dropped.
	PingInterval, PingTimeout time.Duration
	// BackoffMin and BackoffMax bound the reconnect delay. After a connection
	// that stayed up for stableAfter, the first attempt goes out at once; then
	// the ceiling doubles per failed attempt from BackoffMin up to BackoffMax
	// and the delay is drawn uniformly below it (full jitter).
	BackoffMin, BackoffMax time.Duration
	// HandleWindow is how long a server without last_seq is given to handle
	// a frame its WebSocket layer has read (delivery.go): frames confirmed
	// more recently than that before the connection ended are redelivered.
	HandleWindow time.Duration
	// Retain is how many written messages are kept for redelivery;
	// RetainBytes bounds their total size (the oldest go first), so that
	// large replies cannot pile up in memory.
	Retain      int
	RetainBytes int64
	// ReadLimit is the largest frame accepted from the server; a larger one
	// closes the connection (1009) and costs about ReadLimit of memory, given
	// back to the system at once.
	ReadLimit int64
	// Credentials, when set, is called before every connection attempt for the
	// upgrade request's extra headers (a bearer token) and the TLS configuration
	// of a wss:// URL (nil: the system roots, no client certificate). Called per
	// attempt, it follows credentials rotated on disk; an error is logged and the
	// attempt fails like an unreachable server (retried after the backoff).
	Credentials func() (http.Header, *tls.Config, error)
	// Log receives every connection transition.
	Log zerolog.Logger
}

// Rejected is returned by Run when the server answers app_ready with an
// execute_ack whose status is not "confirmed".
type Rejected struct {
	Ack     []byte // the execute_ack frame as received
	Code    string // its error_code
	Message string // its error_message (or error_reason)
}

// Error implements error.
func (r *Rejected) Error() string {
	return fmt.Sprintf("execute_ack rejected: %s: %s", r.Code, r.Message)
}

// Link is a reconnecting WebSocket client with an outbox. Create it with New,
// start it with Run; Send, Inbox, Connected, Pending and Flush may be
// used from any goroutine at any time, before Run too.
type Link struct {
	cfg    Config
	log    zerolog.Logger
	dialer *net.Dialer
	where  string // the URL as logged: without a password
	runs   atomic.Bool

	mu        sync.Mutex
	out       queue.FIFO[*item]
	kept      ring
	seq       uint64 // last seq assigned
	handled   uint64 // highest seq a server without last_seq is known to have handled
	tickets   uint64 // last ticket issued by Send
	written   uint64 // highest ticket written (or known delivered)
	connected bool
	progress  chan struct{} // closed and replaced whenever written advances
	wake      chan struct{} // nudges the writer; capacity 1

	inQ   *queue.Unbounded[[]byte] // received frames, the reader never waits
	inbox chan []byte
}

// def sets *p to v when it is zero or negative (unset).
func def[T int | int64 | time.Duration](p *T, v T) {
	if *p <= 0 {
		*p = v
	}
}

// New returns a Link for cfg, applying defaults. It does not connect.
func New(cfg Config) *Link {
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.PingInterval, DefaultPingInterval)
	def(&cfg.PingTimeout, DefaultPingTimeout)
	def(&cfg.BackoffMin, DefaultBackoffMin)
	def(&cfg.BackoffMax, DefaultBackoffMax)
	if cfg.BackoffMax < cfg.BackoffMin {
		cfg.BackoffMax = cfg.BackoffMin
	}
	def(&cfg.HandleWindow, DefaultHandleWindow)
	def(&cfg.Retain, DefaultRetain)
	def(&cfg.RetainBytes, DefaultRetainBytes)
	def(&cfg.ReadLimit, DefaultReadLimit)
	where := cfg.URL
	if u, err := url.Parse(cfg.URL); err == nil {
		where = u.Redacted()
	}
	return &Link{
		cfg:      cfg,
		log:      cfg.Log,
		dialer:   &net.Dialer{KeepAlive: 15 * time.Second}, // a second line behind the heartbeat
		where:    where,
		kept:     newRing(cfg.Retain, cfg.RetainBytes),
		progress: make(chan struct{}),
		wake:     make(chan struct{}, 1),
		inQ:      queue.New[[]byte](),
		inbox:    make(chan []byte, 64),
	}
}

// Send queues the JSON object obj for delivery and returns its ticket: its
// position (1, 2, …) in Send order, 0 if obj is not a JSON object (it is then
// dropped and logged). It never blocks. Messages are written in Send order,
// each with a "seq" assigned at its first write, and stay queued while
// disconnected; the queue is unbounded (see Pending). Send takes obj over:
// the caller must not touch it afterwards (a large reply is not copied, and
// its spare capacity, if any, receives the seq).
func (l *Link) Send(obj []byte) uint64 {
	if err := checkObject(obj); err != nil {
		l.log.Error().Err(err).Int("bytes", len(obj)).Msg("link: message dropped")
		return 0
	}
	l.mu.Lock()
	l.tickets++
	t := l.tickets
	l.out.Push(&item{ticket: t, obj: obj})
	n := l.out.Len()
	l.mu.Unlock()
	if n > 0 && n%10000 == 0 {
		l.log.Warn().Int("pending", n).Msg("link: outbox growing")
	}
	l.nudge()
	return t
}

// Inbox returns the frames received after a confirmed handshake, in arrival
// order (execute_ack frames are consumed by the link). It is never closed;
// frames still undelivered when Run returns are dropped. Reading is decoupled
// from the connection, so a slow consumer never stalls the heartbeat.
func (l *Link) Inbox() <-chan []byte { return l.inbox }

// Connected reports whether a handshake is confirmed on a live connection.
func (l *Link) Connected() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.connected
}

// Pending returns the number of Send messages not written yet.
func (l *Link) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.out.Len()
}

// Flush waits until every message given to Send before the call has been
// written to a connection, or ctx is done.
func (l *Link) Flush(ctx context.Context) error {
	l.mu.Lock()
	target := l.tickets
	l.mu.Unlock()
	for {
		l.mu.Lock()
		done, ch, left := l.written >= target, l.progress, l.out.Len()
		l.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("link: flush: %d messages unwritten: %w", left, ctx.Err())
		}
	}
}

func (l *Link) nudge() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// Run connects and reconnects until ctx is done, then closes the connection
// with a normal closure and returns nil. It returns a *Rejected when the
// server refuses the handshake, and an error at once for an unusable Config
// (bad URL, no Hello, Hello not a JSON object). Run may be called once.
func (l *Link) Run(ctx context.Context) error {
	if !l.runs.CompareAndSwap(false, true) {
		return errors.New("link: Run called twice")
	}
	u, err := url.Parse(l.cfg.URL)
	if err != nil {
		return fmt.Errorf("link: server URL: %w", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("link: server URL %q: scheme must be ws or wss", l.cfg.URL)
	}
	if l.cfg.Hello == nil {
		return errors.New("link: no Hello function")
	}

	stop, fwdDone := make(chan struct{}), make(chan struct{})
	go l.forward(stop, fwdDone)
	defer func() { close(stop); <-fwdDone }()

	bo := backoff.Exponential{Min: l.cfg.BackoffMin, Max: l.cfg.BackoffMax, Jitter: true}
	for attempt := 1; ; attempt++ {
		if ctx.Err() != nil {
			return nil
		}
		up, err := l.session(ctx, attempt)
		var rej *Rejected
		var fatal *fatalError
		switch {
		case errors.As(err, &rej):
			return rej
		case errors.As(err, &fatal):
			return fatal.err
		case ctx.Err() != nil:
			return nil
		}
		if up >= stableAfter {
			bo.Reset()
			l.log.Info().Int("attempt", attempt).Msg("link: reconnecting at once")
			continue
		}
		delay, ceiling := bo.Next()
		l.log.Info().Dur("delay", delay).Dur("ceiling", ceiling).Int("attempt", attempt).
			Msg("link: backing off before reconnecting")
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// fatalError marks an error that retrying cannot cure.
type fatalError struct{ err error }

func (f *fatalError) Error() string { return f.err.Error() }

// deliver queues a received frame for the Inbox.
func (l *Link) deliver(frame []byte) { l.inQ.Push(frame) }

// forward moves received frames from the unbounded queue to the Inbox
// channel until stop is closed.
func (l *Link) forward(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		batch, _ := l.inQ.TakeAll()
		for _, f := range batch {
			select {
			case l.inbox <- f:
			case <-stop:
				return
			}
		}
		if len(batch) > 0 {
			continue
		}
		select {
		case <-l.inQ.Wake():
		case <-stop:
			return
		}
	}
}
