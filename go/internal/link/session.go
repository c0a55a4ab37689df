package link

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
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
}

// ackMsg is an execute_ack as parsed and as received.
type ackMsg struct {
	f   ackFields
	raw []byte
}

// fail records the first reason the connection ended and marks it dead.
func (s *session) fail(err error) {
	s.once.Do(func() {
		s.reason = err
		close(s.dead)
	})
}

// session runs one connection: dial, app_ready, execute_ack, redelivery, then
// writing until the connection dies or ctx is done. confirmed tells whether
// the handshake succeeded (the backoff then restarts).
func (l *Link) session(ctx context.Context, attempt int) (confirmed bool, err error) {
	l.log.Info().Str("url", l.cfg.URL).Int("attempt", attempt).Msg("link: connecting")
	dctx, cancel := context.WithTimeout(ctx, l.cfg.AckTimeout)
	conn, _, err := websocket.Dial(dctx, l.cfg.URL, &websocket.DialOptions{HTTPClient: l.client})
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return false, nil
		}
		l.log.Warn().Err(err).Msg("link: connect failed")
		return false, fmt.Errorf("link: dial: %w", err)
	}
	conn.SetReadLimit(l.cfg.ReadLimit)
	s := &session{conn: conn, dead: make(chan struct{}), acks: make(chan ackMsg, 1)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.wg.Add(2)
	go l.read(s)
	go l.heartbeat(s)
	began := time.Now()
	defer func() {
		s.fail(errShutdown)
		_ = conn.CloseNow() // no-op after a close handshake
		s.cancel()
		s.wg.Wait()
		l.mu.Lock()
		l.connected = false
		pending := l.out.len()
		l.mu.Unlock()
		ev := l.log.Warn()
		if errors.Is(s.reason, errShutdown) {
			ev = l.log.Info()
		}
		ev.AnErr("reason", s.reason).Dur("after", time.Since(began)).Int("pending", pending).
			Msg("link: disconnected")
	}()
	l.log.Info().Msg("link: connected")

	if err := l.hello(s); err != nil {
		return false, err
	}
	timer := time.NewTimer(l.cfg.AckTimeout)
	defer timer.Stop()
	var msg ackMsg
	select {
	case <-ctx.Done():
		l.closeNormal(s, "", errShutdown)
		return false, nil
	case <-s.dead:
		return false, s.reason
	case <-timer.C:
		l.log.Warn().Dur("timeout", l.cfg.AckTimeout).Msg("link: no execute_ack, closing")
		s.fail(errAckTimeout)
		return false, errAckTimeout
	case msg = <-s.acks:
	}
	ack := msg.f
	if ack.Status != "confirmed" {
		text := ack.ErrorMessage
		if text == "" {
			text = ack.ErrorReason
		}
		rej := &Rejected{Ack: msg.raw, Code: ack.ErrorCode, Message: text}
		l.log.Error().Str("status", ack.Status).Str("code", rej.Code).Str("message", rej.Message).
			Msg("link: handshake rejected")
		l.closeNormal(s, "execute_ack rejected", rej)
		return false, rej
	}
	if err := l.confirmed(s, ack); err != nil {
		return true, err
	}
	return true, l.writeLoop(ctx, s)
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

// confirmed marks the link connected and redelivers what the server asked for
// with last_seq.
func (l *Link) confirmed(s *session, ack ackFields) error {
	last, hasLast := ack.lastSeq()
	if !hasLast && len(ack.LastSeq) > 0 && string(ack.LastSeq) != "null" {
		l.log.Warn().RawJSON("last_seq", ack.LastSeq).Msg("link: execute_ack last_seq ignored: not a non-negative integer")
	}
	var resend [][]byte
	l.mu.Lock()
	if hasLast {
		resend = l.kept.after(last)
		if l.kept.evicted > last {
			l.log.Warn().Uint64("last_seq", last).Uint64("evicted_through", l.kept.evicted).
				Msg("link: some messages after last_seq are no longer retained")
		}
		// A message whose write failed keeps its seq; skip it if it got through.
		for it := l.out.front(); it != nil && it.seq != 0 && it.seq <= last; it = l.out.front() {
			l.out.pop()
			l.advance(it.ticket)
		}
	}
	pending := l.out.len()
	l.mu.Unlock()
	ev := l.log.Info().Int("redeliver", len(resend)).Int("pending", pending)
	if hasLast {
		ev = ev.Uint64("last_seq", last)
	}
	ev.Msg("link: handshake confirmed")
	for _, f := range resend {
		if err := s.conn.Write(s.ctx, websocket.MessageText, f); err != nil {
			s.fail(fmt.Errorf("redeliver: %w", err))
			return s.reason
		}
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
		it := l.out.front()
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
			l.out.pop()
			l.kept.add(it.seq, it.frame)
			l.advance(it.ticket)
			l.mu.Unlock()
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
		_, data, err := s.conn.Read(s.ctx)
		if err != nil {
			s.fail(fmt.Errorf("read: %w", err))
			return
		}
		if s.confirmed.Load() {
			// After the handshake every frame is the supervisor's, a late
			// execute_ack included (it answers it); no parsing on this path.
			l.deliver(data)
			continue
		}
		f, isAck := parseAck(data)
		switch {
		case isAck:
			// Decide here, before the next Read, so that frames following a
			// confirmed ack go to the Inbox.
			if f.Status == "confirmed" {
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
		err := s.conn.Ping(pctx)
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
