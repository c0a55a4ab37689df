package engine

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/queue"
)

// maxLine is the protocol's line limit (the '\n' excluded).
const maxLine = 1 << 20

var errLineTooLong = errors.New("line too long")

// RequestError is an engine's refusal of a request (`"ok": false`).
type RequestError struct {
	Op      string
	Message string // the engine's "error" text
}

// Error reads "engine refused <op>: <message>".
func (e *RequestError) Error() string { return "engine refused " + e.Op + ": " + e.Message }

// The requests' ops (docs/engine-protocol.md).
const (
	opHello    = "hello"
	opPlay     = "play"
	opStop     = "stop"
	opReset    = "reset"
	opProgress = "progress"
	opShutdown = "shutdown"
)

// request is every op's wire form; absent fields are omitted.
type request struct {
	ID         uint64 `json:"id"`
	Op         string `json:"op"`
	Slot       *int   `json:"slot,omitempty"`
	FileID     *int64 `json:"file_id,omitempty"`
	URI        string `json:"uri,omitempty"`
	NewCamera  bool   `json:"new_camera,omitempty"`
	OutputPath string `json:"output_path,omitempty"`
}

// envelope is what every line is first decoded as.
type envelope struct {
	ID    json.RawMessage `json:"id"`
	OK    *bool           `json:"ok"`
	Error *string         `json:"error"`
	Event *string         `json:"event"`
}

// result is a reply handed to its caller, or the reason none will come.
type result struct {
	seq  uint64
	line []byte
	ok   bool
	msg  string // the "error" text of a refusal
	err  error
}

func (r result) decode(v any) error {
	if err := json.Unmarshal(r.line, v); err != nil {
		return fmt.Errorf("malformed reply from engine: %w", err)
	}
	return nil
}

type pendingCall struct {
	op   string
	slot int         // of a stop, whose reply makes the slot's earlier events stale
	ch   chan result // buffered: the reader never blocks, even for a caller that gave up
}

// client is the JSON-lines side of Engine: one reader goroutine matches replies to
// pending calls and queues events; callers write requests under wmu.
type client struct {
	log zerolog.Logger

	wmu    sync.Mutex // one request on the wire at a time; ids ascend in wire order
	nextID uint64

	mu      sync.Mutex
	conn    net.Conn
	pending map[uint64]*pendingCall // kept until answered, even if the caller gave up
	err     error                   // why the connection ended; nil while it is up

	ready      chan struct{} // closed on the first `ready` event
	readyOnce  sync.Once
	rejected   string        // the `rejected` event's reason, read after readerDone
	readerDone chan struct{} // closed when the reader has ended

	events *eventStream
	quit   chan struct{} // closed when nobody will ever read events
}

func (c *client) init(log zerolog.Logger) {
	c.log = log
	c.pending = map[uint64]*pendingCall{}
	c.ready = make(chan struct{})
	c.readerDone = make(chan struct{})
	c.quit = make(chan struct{})
	c.events = newEventStream(c.quit)
}

// attach starts the reader and the event pump on conn.
func (c *client) attach(conn net.Conn) {
	c.mu.Lock()
	c.conn = conn
	c.mu.Unlock()
	go c.readLoop(conn)
	go c.events.pump()
}

// peerGone is called once the process has exited: the reader still takes what is
// buffered, but a stray descendant holding the socket cannot keep it waiting.
func (c *client) peerGone(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.SetReadDeadline(time.Now().Add(d))
	}
}

// abandon closes the connection of a failed start and stops the event pump.
func (c *client) abandon() {
	close(c.quit)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		c.conn.Close()
	}
}

func (c *client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// call sends req with the next id and waits for its reply. A refusal comes back as
// *RequestError.
func (c *client) call(ctx context.Context, req request) (result, error) {
	if err := ctx.Err(); err != nil {
		return result{}, fmt.Errorf("engine %s: %w", req.Op, err)
	}
	c.wmu.Lock()
	c.mu.Lock()
	if c.err != nil || c.conn == nil {
		err := c.err
		c.mu.Unlock()
		c.wmu.Unlock()
		if err == nil {
			err = ErrClosed
		}
		return result{}, fmt.Errorf("engine %s: %w", req.Op, err)
	}
	c.nextID++
	req.ID = c.nextID
	pc := &pendingCall{op: req.Op, slot: -1, ch: make(chan result, 1)}
	if req.Op == opStop && req.Slot != nil {
		pc.slot = *req.Slot
	}
	c.pending[req.ID] = pc
	conn := c.conn
	c.mu.Unlock()
	err := writeLine(ctx, conn, req)
	c.wmu.Unlock()
	if err != nil {
		// A partial line would garble the stream: end the connection (and with it
		// every pending call).
		conn.Close()
		return result{}, fmt.Errorf("engine %s: %w", req.Op, err)
	}
	select {
	case res := <-pc.ch:
		if res.err != nil {
			return res, fmt.Errorf("engine %s: %w", req.Op, res.err)
		}
		if !res.ok {
			return res, &RequestError{Op: req.Op, Message: res.msg}
		}
		return res, nil
	case <-ctx.Done():
		return result{}, fmt.Errorf("engine %s: no reply: %w", req.Op, ctx.Err())
	}
}

// writeLine writes one request line. Its deadline is ctx's, or writeTimeout when ctx
// has none: a write only blocks when the engine stopped reading.
func writeLine(ctx context.Context, conn net.Conn, req request) error {
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(writeTimeout)
	}
	if err := conn.SetWriteDeadline(deadline); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	if _, err := conn.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write request: %w", err)
	}
	return nil
}

// readLoop reads lines until the connection ends. Seq numbers every line received,
// well-formed or not, from 1.
func (c *client) readLoop(conn net.Conn) {
	r := bufio.NewReaderSize(conn, 64<<10)
	var seq uint64
	var err error
	for {
		var line []byte
		line, err = readLine(r)
		if errors.Is(err, errLineTooLong) {
			seq++
			c.log.Warn().Uint64("seq", seq).Msg("engine sent a line over 1 MiB; skipped")
			continue
		}
		if err != nil {
			break
		}
		seq++
		c.handleLine(seq, line)
	}
	c.finish(err)
}

// readLine returns the next line without its '\n'. An over-long line is consumed and
// reported as errLineTooLong; a last line without '\n' is dropped with the EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	var buf []byte
	tooLong := false
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(chunk) > maxLine+1 {
				tooLong, buf = true, nil
			} else {
				buf = append(buf, chunk...)
			}
		}
		switch {
		case err == nil && tooLong:
			return nil, errLineTooLong
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return nil, err
		}
	}
}

func (c *client) handleLine(seq uint64, line []byte) {
	var env envelope
	if err := json.Unmarshal(line, &env); err != nil {
		c.log.Warn().Uint64("seq", seq).Err(err).Str("line", excerpt(line)).Msg("malformed line from engine")
		return
	}
	switch {
	case env.Event != nil:
		c.handleEvent(seq, EventKind(*env.Event), line)
	case env.ID != nil:
		c.handleReply(seq, env, line)
	default:
		c.log.Warn().Uint64("seq", seq).Str("line", excerpt(line)).Msg("line from engine is neither a reply nor an event")
	}
}

// handleReply hands a reply to the call with its id. A reply with "id": null (the
// engine could not read the request's id) belongs to the oldest pending call, since
// the engine answers in request order.
func (c *client) handleReply(seq uint64, env envelope, line []byte) {
	c.mu.Lock()
	var id uint64
	var pc *pendingCall
	if bytes.Equal(env.ID, []byte("null")) {
		for k, p := range c.pending {
			if pc == nil || k < id {
				id, pc = k, p
			}
		}
	} else if json.Unmarshal(env.ID, &id) == nil {
		pc = c.pending[id]
	}
	if pc != nil {
		delete(c.pending, id)
	}
	c.mu.Unlock()
	if pc == nil {
		c.log.Warn().Uint64("seq", seq).Str("line", excerpt(line)).Msg("reply from engine matches no request")
		return
	}
	res := result{seq: seq, line: line, ok: env.OK != nil && *env.OK}
	if !res.ok {
		res.msg = "refused without a reason"
		if env.Error != nil {
			res.msg = *env.Error
		}
	}
	c.log.Debug().Uint64("seq", seq).Uint64("id", id).Str("op", pc.op).Bool("ok", res.ok).Msg("engine reply")
	if pc.op == opStop && res.ok && pc.slot >= 0 {
		// Before the caller learns of the stop: the stopped file's last events must
		// never reach it.
		c.events.dropBefore(pc.slot, seq)
	}
	pc.ch <- res
}

type eventPayload struct {
	Slot         *int    `json:"slot"`
	FileID       *int64  `json:"file_id"`
	Frames       uint64  `json:"frames"`
	CameraFrames uint64  `json:"camera_frames"`
	MonoNS       int64   `json:"mono_ns"`
	Error        *string `json:"error"`
	// stream_lost
	Reason    *string `json:"reason"`
	WillRetry bool    `json:"will_retry"`
	Attempt   int     `json:"attempt"`
	RetryInMS int64   `json:"retry_in_ms"`
	// stream_resumed
	DownMS      int64 `json:"down_ms"`
	Attempts    int   `json:"attempts"`
	TrackerKept bool  `json:"tracker_kept"`
}

func (c *client) handleEvent(seq uint64, kind EventKind, line []byte) {
	switch kind {
	case EventReady:
		c.readyOnce.Do(func() { close(c.ready) })
		return
	case EventRejected: // another client holds the engine; it closes us next
		var p eventPayload
		_ = json.Unmarshal(line, &p)
		if p.Error != nil {
			c.rejected = *p.Error
		} else {
			c.rejected = "rejected"
		}
		c.log.Error().Str("reason", c.rejected).Msg("engine rejected this connection")
		return
	case EventFileStarted, EventFileDone, EventFileError, EventStreamLost, EventStreamResumed, EventFatal:
	default:
		c.log.Warn().Uint64("seq", seq).Str("event", string(kind)).Msg("unknown event from engine; ignored")
		return
	}
	var p eventPayload
	if err := json.Unmarshal(line, &p); err != nil {
		c.log.Warn().Uint64("seq", seq).Err(err).Str("line", excerpt(line)).Msg("malformed event from engine; ignored")
		return
	}
	ev := Event{Seq: seq, Kind: kind, Slot: -1, Frames: p.Frames, CameraFrames: p.CameraFrames, MonoNS: p.MonoNS}
	if p.Error != nil {
		ev.Error = *p.Error
	}
	switch kind {
	case EventStreamLost:
		ev.Lost = &StreamLost{Reason: "stream lost", WillRetry: p.WillRetry, Attempt: p.Attempt, RetryInMS: p.RetryInMS}
		if p.Reason != nil {
			ev.Lost.Reason = *p.Reason
		}
	case EventStreamResumed:
		ev.Resumed = &StreamResumed{DownMS: p.DownMS, Attempts: p.Attempts, TrackerKept: p.TrackerKept}
	}
	if kind != EventFatal {
		if p.Slot == nil || p.FileID == nil {
			c.log.Warn().Uint64("seq", seq).Str("line", excerpt(line)).Msg("event from engine lacks slot or file_id; ignored")
			return
		}
		ev.Slot, ev.FileID = *p.Slot, *p.FileID
	}
	c.log.Debug().Uint64("seq", seq).Str("event", string(kind)).Int("slot", ev.Slot).Int64("file_id", ev.FileID).Msg("engine event")
	c.events.q.Push(ev)
}

// finish fails every pending call and closes the event stream.
func (c *client) finish(readErr error) {
	if readErr == nil || errors.Is(readErr, io.EOF) {
		readErr = io.EOF
	}
	err := fmt.Errorf("%w (%v)", ErrClosed, readErr)
	if c.rejected != "" {
		err = fmt.Errorf("%w: engine rejected the connection: %s", ErrClosed, c.rejected)
	}
	c.mu.Lock()
	c.err = err
	pending := c.pending
	c.pending = map[uint64]*pendingCall{}
	c.conn.Close()
	c.mu.Unlock()
	for _, pc := range pending {
		pc.ch <- result{err: err}
	}
	c.log.Info().Err(readErr).Msg("engine connection closed")
	c.events.q.Close()
	close(c.readerDone)
}

// excerpt shortens a line for a log message.
func excerpt(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// eventStream moves events from the reader, which must never block, to Events in
// order, leaving out those of a stopped file: an event of a slot read before a stop
// reply of that slot. The supervisor needs no line numbers.
type eventStream struct {
	q    *queue.Unbounded[Event]
	out  chan Event
	quit <-chan struct{}
	// purge wakes the pump after dropBefore, so that an event it holds is checked
	// again before it can be delivered.
	purge chan struct{}
	done  chan struct{} // closed when the pump returns

	mu      sync.Mutex
	stopped map[int]uint64 // slot → line number of its last stop reply
}

func newEventStream(quit <-chan struct{}) *eventStream {
	return &eventStream{q: queue.New[Event](), out: make(chan Event), quit: quit,
		purge: make(chan struct{}), done: make(chan struct{}), stopped: map[int]uint64{}}
}

// dropBefore makes the events of slot read before line seq stale. It returns once
// the pump cannot deliver any of them any more.
func (s *eventStream) dropBefore(slot int, seq uint64) {
	s.mu.Lock()
	s.stopped[slot] = max(s.stopped[slot], seq)
	s.mu.Unlock()
	select {
	case s.purge <- struct{}{}:
	case <-s.done:
	}
}

func (s *eventStream) stale(ev Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ev.Slot >= 0 && ev.Seq < s.stopped[ev.Slot]
}

// pump delivers the queued events to out and closes out after the last one. Every
// wait includes purge, so dropBefore never waits long.
func (s *eventStream) pump() {
	defer close(s.done)
	defer close(s.out)
	for {
		batch, closed := s.q.TakeAll()
		if len(batch) == 0 {
			if closed {
				return
			}
			select {
			case <-s.q.Wake():
			case <-s.purge:
			case <-s.quit:
				return
			}
			continue
		}
		for _, ev := range batch {
			for sent := false; !sent && !s.stale(ev); {
				select {
				case s.out <- ev:
					sent = true
				case <-s.purge: // check ev again
				case <-s.quit:
					return
				}
			}
		}
	}
}
