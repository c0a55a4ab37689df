package link

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

var (
	errAckTimeout = errors.New("no execute_ack in time")
	errShutdown   = errors.New("shutting down")
)

// session is one WebSocket connection. Its context is not derived from Run's:
// coder/websocket closes the connection when a Read or Write context expires,
// and on shutdown the connection must still carry the close handshake.
type session struct {
	conn      *websocket.Conn
	ctx       context.Context
	cancel    context.CancelFunc
	dead      chan struct{}
	once      sync.Once
	reason    error
	acks      chan ackMsg
	confirmed atomic.Bool
	wg        sync.WaitGroup

	// Delivery evidence for a server without last_seq (delivery.go).
	ev      evidence
	written atomic.Uint64 // highest seq of a retained frame written on this connection
	wrote   chan struct{} // nudged after each write; capacity 1
}

// ackMsg is an execute_ack as read and as received.
type ackMsg struct {
	f   protocol.HandshakeAck
	raw []byte
}

// fail records the first reason the connection ended and marks it dead. It
// reports whether err was that first reason.
func (s *session) fail(err error) (first bool) {
	s.once.Do(func() {
		s.reason = err
		close(s.dead)
		first = true
	})
	return first
}

// noteWritten records that the retained frame seq is written and asks for a
// confirming ping.
func (s *session) noteWritten(seq uint64) {
	if seq > s.written.Load() {
		s.written.Store(seq)
	}
	select {
	case s.wrote <- struct{}{}:
	default:
	}
}

// session runs one connection: dial, app_ready, execute_ack, redelivery, then
// writing until the connection dies or ctx is done. up is how long the
// connection stayed up after a confirmed handshake, 0 when none.
func (l *Link) session(ctx context.Context, attempt int) (up time.Duration, err error) {
	l.log.Info().Str("url", l.where).Int("attempt", attempt).Msg("link: connecting")
	at, err := l.dialOptions()
	if err != nil {
		l.log.Error().Err(err).Msg("link: credentials unusable, not connecting")
		return 0, fmt.Errorf("link: credentials: %w", err)
	}
	dctx, cancel := context.WithTimeout(ctx, l.cfg.AckTimeout)
	conn, resp, err := websocket.Dial(dctx, l.cfg.URL, at.opts)
	cancel()
	// The transport is this attempt's: a refused upgrade may have left its
	// connection idle in it (a WebSocket, once up, is no longer the transport's).
	at.opts.HTTPClient.CloseIdleConnections()
	if err != nil {
		if ctx.Err() != nil {
			return 0, nil
		}
		return 0, l.dialFailed(err, resp, at)
	}
	conn.SetReadLimit(l.cfg.ReadLimit)
	s := &session{conn: conn, dead: make(chan struct{}), acks: make(chan ackMsg, 1),
		wrote: make(chan struct{}, 1), ev: evidence{window: l.cfg.HandleWindow}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(3)
	go l.read(s)
	go l.heartbeat(s)
	go l.confirm(s)
	began := time.Now()
	var confirmedAt time.Time
	defer func() {
		s.fail(errShutdown)
		_ = conn.CloseNow() // no-op after a close handshake
		s.cancel()
		s.wg.Wait()
		if !confirmedAt.IsZero() {
			up = time.Since(confirmedAt)
		}
		handled := s.ev.handled()
		l.mu.Lock()
		l.connected = false
		pending := l.out.Len()
		l.handled = max(l.handled, handled)
		handled = l.handled
		l.mu.Unlock()
		ev := l.log.Warn()
		if errors.Is(s.reason, errShutdown) {
			ev = l.log.Info()
		}
		ev.AnErr("reason", s.reason).Dur("after", time.Since(began)).Int("pending", pending).
			Uint64("written", s.written.Load()).Uint64("handled", handled).
			Msg("link: disconnected")
	}()
	l.log.Info().Msg("link: connected")

	if err := l.hello(s); err != nil {
		return 0, err
	}
	timer := time.NewTimer(l.cfg.AckTimeout)
	defer timer.Stop()
	var msg ackMsg
	select {
	case <-ctx.Done():
		l.closeNormal(s, "", errShutdown)
		return 0, nil
	case <-s.dead:
		return 0, s.reason
	case <-timer.C:
		l.log.Warn().Dur("timeout", l.cfg.AckTimeout).Msg("link: no execute_ack, closing")
		s.fail(errAckTimeout)
		return 0, errAckTimeout
	case msg = <-s.acks:
	}
	ack := msg.f
	if !ack.Confirmed() {
		rej := &Rejected{Ack: msg.raw, Code: ack.ErrorCode, Message: ack.ErrorMessage}
		l.log.Error().Str("status", ack.Status).Str("code", rej.Code).Str("message", rej.Message).
			Msg("link: handshake rejected")
		l.closeNormal(s, "execute_ack rejected", rej)
		return 0, rej
	}
	confirmedAt = time.Now()
	if err := l.confirmed(s, ack); err != nil {
		return 0, err
	}
	return 0, l.writeLoop(ctx, s)
}

// hello writes app_ready with the next seq.
func (l *Link) hello(s *session) error {
	obj := l.cfg.Hello()
	if err := checkObject(obj); err != nil {
		s.fail(err)
		return &fatalError{fmt.Errorf("link: app_ready from Hello: %w", err)}
	}
	l.mu.Lock()
	l.seq++
	seq := l.seq
	l.mu.Unlock()
	// Hello's bytes are not the link's: clip them so that withSeq copies.
	if err := s.conn.Write(s.ctx, websocket.MessageText, withSeq(obj[:len(obj):len(obj)], seq)); err != nil {
		s.fail(fmt.Errorf("write app_ready: %w", err))
		return s.reason
	}
	l.log.Info().Uint64("seq", seq).Msg("link: app_ready sent")
	return nil
}

// confirmed marks the link connected and redelivers the retained messages the
// server may not have handled: those after its last_seq when it sends one,
// else those after the handled watermark (delivery.go).
func (l *Link) confirmed(s *session, ack protocol.HandshakeAck) error {
	last, hasLast := ack.LastSeqNumber()
	if !hasLast && len(ack.LastSeq) > 0 && string(ack.LastSeq) != "null" {
		l.log.Warn().RawJSON("last_seq", ack.LastSeq).Msg("link: execute_ack last_seq ignored: not a non-negative integer")
	}
	l.mu.Lock()
	from := l.handled
	if hasLast {
		from = last
		// A message whose write failed keeps its seq; skip it if it got through.
		for it, ok := l.out.Front(); ok && it.seq != 0 && it.seq <= last; it, ok = l.out.Front() {
			l.out.Pop()
			l.advance(it.ticket)
		}
	}
	resend := l.kept.after(from)
	evicted := l.kept.evicted
	pending := l.out.Len()
	l.mu.Unlock()
	if evicted > from {
		l.log.Warn().Uint64("after", from).Uint64("evicted_through", evicted).
			Msg("link: some messages to redeliver are no longer retained")
	}
	ev := l.log.Info().Int("redeliver", len(resend)).Int("pending", pending)
	if hasLast {
		ev = ev.Uint64("last_seq", last)
	} else {
		ev = ev.Uint64("handled", from)
	}
	ev.Msg("link: handshake confirmed")
	for _, f := range resend {
		if err := s.conn.Write(s.ctx, websocket.MessageText, f.frame); err != nil {
			s.fail(fmt.Errorf("redeliver: %w", err))
			return s.reason
		}
		s.noteWritten(f.seq)
	}
	return nil
}

// advance records that everything up to ticket t is written. l.mu is held.
func (l *Link) advance(t uint64) {
	if t > l.written {
		l.written = t
	}
	close(l.progress)
	l.progress = make(chan struct{})
}

// writeLoop drains the outbox until the connection dies
// or ctx is done (then it closes normally).
func (l *Link) writeLoop(ctx context.Context, s *session) error {
	for {
		if ctx.Err() != nil {
			l.closeNormal(s, "", errShutdown)
			return nil
		}
		select {
		case <-s.dead:
			return s.reason
		default:
		}
		l.mu.Lock()
		var frame []byte
		it, _ := l.out.Front()
		if it != nil {
			if it.seq == 0 {
				l.seq++
				it.seq, it.frame, it.obj = l.seq, withSeq(it.obj, l.seq), nil
			}
			frame = it.frame
		}
		l.mu.Unlock()
		if frame == nil {
			select {
			case <-l.wake:
			case <-s.dead:
				return s.reason
			case <-ctx.Done():
			}
			continue
		}
		if err := s.conn.Write(s.ctx, websocket.MessageText, frame); err != nil {
			s.fail(fmt.Errorf("write: %w", err))
			return s.reason
		}
		if it != nil {
			l.mu.Lock()
			l.out.Pop()
			l.kept.add(it.seq, it.frame)
			l.advance(it.ticket)
			l.mu.Unlock()
			s.noteWritten(it.seq)
		}
	}
}

// closeNormal marks the session ended by cause and performs the close
// handshake, bounded by closeTimeout.
func (l *Link) closeNormal(s *session, reason string, cause error) {
	s.fail(cause)
	done := make(chan error, 1)
	go func() { done <- s.conn.Close(websocket.StatusNormalClosure, reason) }()
	select {
	case err := <-done:
		if err != nil {
			l.log.Debug().Err(err).Msg("link: close handshake")
		}
	case <-time.After(closeTimeout):
		s.cancel() // an expired read context tears the connection down
		<-done
	}
}

// read is the connection's only reader: coder/websocket answers pings and
// reads pongs only while a Read is in progress.
func (l *Link) read(s *session) {
	defer s.wg.Done()
	for {
		data, err := readMessage(s.ctx, s.conn)
		now := time.Now()
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				l.log.Error().Int64("limit", l.cfg.ReadLimit).Msg("link: frame over the read limit refused, closing")
				// The refused bytes are garbage now: hand them back to the
				// system at once instead of holding them until the scavenger.
				debug.FreeOSMemory()
			}
			if s.fail(fmt.Errorf("read: %w", err)) {
				s.ev.peerClosed(now)
			}
			return
		}
		s.ev.frame(now)
		if s.confirmed.Load() {
			// After the handshake every frame is the supervisor's, a late
			// execute_ack included (it answers it); no parsing on this path.
			l.deliver(data)
			continue
		}
		f, isAck := protocol.ReadHandshakeAck(data)
		switch {
		case isAck:
			// Decide here, before the next Read, so that frames following a
			// confirmed ack go to the Inbox.
			if f.Confirmed() {
				s.confirmed.Store(true)
				l.mu.Lock()
				l.connected = true
				l.mu.Unlock()
			}
			select {
			case s.acks <- ackMsg{f: f, raw: data}:
			default:
			}
		default:
			l.log.Warn().Int("bytes", len(data)).Msg("link: frame before execute_ack dropped")
		}
	}
}

// heartbeat pings every PingInterval; a pong missing for PingTimeout drops
// the connection (this is how a half-open TCP connection is noticed).
func (l *Link) heartbeat(s *session) {
	defer s.wg.Done()
	t := time.NewTicker(l.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(s.ctx, l.cfg.PingTimeout)
		err := l.ping(pctx, s)
		cancel()
		if err != nil {
			select {
			case <-s.dead:
				return
			default:
			}
			s.fail(fmt.Errorf("heartbeat: no pong within %v: %w", l.cfg.PingTimeout, err))
			_ = s.conn.CloseNow()
			return
		}
	}
}

// confirmDelay lets a burst of writes finish before the ping that confirms it,
// so that a burst costs one ping; it also bounds pings to about 1/confirmDelay.
const confirmDelay = 20 * time.Millisecond

// confirm pings after writes, so that each burst is confirmed by a pong
// (delivery.go). At most one such ping is in flight; it waits for its pong as
// long as the connection lives: liveness is the heartbeat's to judge.
func (l *Link) confirm(s *session) {
	defer s.wg.Done()
	t := time.NewTimer(confirmDelay)
	t.Stop()
	for {
		select {
		case <-s.dead:
			return
		case <-s.wrote:
		}
		t.Reset(confirmDelay)
		select {
		case <-s.dead:
			t.Stop()
			return
		case <-t.C:
		}
		if l.ping(s.ctx, s) != nil {
			return // the connection is ending
		}
	}
}

// ping pings and, on the pong, records that every frame written before it has
// been read by the peer.
func (l *Link) ping(ctx context.Context, s *session) error {
	seq := s.written.Load()
	if err := s.conn.Ping(ctx); err != nil {
		return err
	}
	s.ev.pong(seq, time.Now())
	return nil
}

// readMessage reads one message. It grows by chunks rather than by doubling
// one buffer, so that a frame refused at the read limit has cost about the
// limit, not twice it, and only a message spanning several chunks is copied
// once into a slice of its size.
func readMessage(ctx context.Context, c *websocket.Conn) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return nil, err
	}
	return readChunked(r)
}

// Chunk sizes of readChunked: the first fits a request, then doubling up to
// the largest.
const (
	firstChunk = 1 << 10
	maxChunk   = 1 << 20
)

func readChunked(r io.Reader) ([]byte, error) {
	var chunks [][]byte
	size, total := firstChunk, 0
	for {
		buf := make([]byte, size)
		n, err := io.ReadFull(r, buf)
		total += n
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			chunks = append(chunks, buf[:n])
			break
		}
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, buf)
		size = min(2*size, maxChunk)
	}
	if len(chunks) == 1 {
		return chunks[0], nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return out, nil
}
