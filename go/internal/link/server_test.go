package link

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Test fixtures: an in-process WebSocket server that plays FastAPI's part of
// the handshake and records what arrives, and a TCP proxy that can stall.

// ackMode selects how the test server answers app_ready.
type ackMode int

const (
	ackConfirm         ackMode = iota // confirmed, with last_seq
	ackConfirmNoLast                  // confirmed, without last_seq
	ackReject                         // status error
	ackSilent                         // never answers (but keeps reading)
	ackRejectMalformed                // status error with members of the wrong JSON types
)

type rxFrame struct {
	conn int
	seq  uint64
	typ  string
	n    int
	at   time.Time
	raw  []byte
}

// upgrade is an upgrade request a gated server saw, and the status it refused it
// with (0: let through).
type upgrade struct {
	header http.Header
	status int
}

type testServer struct {
	t      *testing.T
	mode   atomic.Int32
	scheme string // ws or wss
	// afterAck is written right after a confirming execute_ack.
	afterAck [][]byte

	mu      sync.Mutex
	hs      *httptest.Server
	addr    string
	conns   []*websocket.Conn
	hellos  []rxFrame
	got     []rxFrame // every data frame, duplicates included
	durable map[uint64]bool
	order   []rxFrame // first arrival of each seq, after forgetting
	closes  []websocket.StatusCode
	// upgrades: every upgrade request a gated server saw.
	upgrades []upgrade
	// closing is set by kill before it waits for the handlers: a handler
	// that accepts after that closes its connection instead of joining wg,
	// so no wg.Add races with wg.Wait.
	closing bool
	wg      sync.WaitGroup
}

func newTestServer(t *testing.T, mode ackMode) *testServer {
	return newGatedServer(t, mode, nil, nil)
}

// newGatedServer is a test server behind gate, which sees every upgrade request first
// and refuses it with an HTTP status (and a body) unless it returns 0; with tc, the
// server speaks TLS (wss://).
func newGatedServer(t *testing.T, mode ackMode, gate func(*http.Request) (int, string), tc *tls.Config) *testServer {
	s := &testServer{t: t, durable: map[uint64]bool{}, scheme: "ws"}
	s.mode.Store(int32(mode))
	var h http.Handler = s
	if gate != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			code, reason := gate(r)
			s.mu.Lock()
			s.upgrades = append(s.upgrades, upgrade{header: r.Header.Clone(), status: code})
			s.mu.Unlock()
			if code != 0 {
				http.Error(w, reason, code)
				return
			}
			s.ServeHTTP(w, r)
		})
	}
	s.hs = httptest.NewUnstartedServer(h)
	if tc != nil {
		s.scheme = "wss"
		s.hs.TLS = tc
		s.hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes the tests make
		s.hs.StartTLS()
	} else {
		s.hs.Start()
	}
	s.addr = s.hs.Listener.Addr().String()
	t.Cleanup(func() { s.kill(0) })
	return s
}

func (s *testServer) url() string { return s.scheme + "://" + s.addr + "/ws" }

// upgradesSeen returns the upgrade requests the gate saw, in order.
func (s *testServer) upgradesSeen() []upgrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]upgrade(nil), s.upgrades...)
}

func (s *testServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	c.SetReadLimit(1 << 20)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		_ = c.CloseNow()
		return
	}
	s.conns = append(s.conns, c)
	id := len(s.conns)
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	ctx := context.Background()
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			s.mu.Lock()
			s.closes = append(s.closes, websocket.CloseStatus(err))
			s.mu.Unlock()
			return
		}
		var m struct {
			Type string `json:"type"`
			Seq  uint64 `json:"seq"`
			N    int    `json:"n"`
		}
		if err := json.Unmarshal(data, &m); err != nil {
			s.t.Errorf("server got a frame that is not JSON: %q", data)
			continue
		}
		f := rxFrame{conn: id, seq: m.Seq, typ: m.Type, n: m.N, at: time.Now(), raw: data}
		s.mu.Lock()
		if m.Type == "app_ready" {
			s.hellos = append(s.hellos, f)
			// last_seq counts the messages recorded before this app_ready.
			var last uint64
			for q := range s.durable {
				last = max(last, q)
			}
			s.mu.Unlock()
			s.answer(c, last)
			continue
		}
		s.got = append(s.got, f)
		if !s.durable[m.Seq] {
			s.durable[m.Seq] = true
			s.order = append(s.order, f)
		}
		s.mu.Unlock()
	}
}

func (s *testServer) answer(c *websocket.Conn, last uint64) {
	var ack string
	switch ackMode(s.mode.Load()) {
	case ackSilent:
		return
	case ackReject:
		ack = `{"type":"execute_ack","request_id":"x","status":"error","config_verified":false,` +
			`"error_code":"CONFIG_MISMATCH","error_message":"Config path does not match the running instance"}`
	case ackRejectMalformed:
		ack = `{"type":"execute_ack","status":"error","error_code":5,"error_message":["no"]}`
	case ackConfirmNoLast:
		ack = `{"type":"execute_ack","request_id":"x","status":"confirmed"}`
	default:
		ack = fmt.Sprintf(`{"type":"execute_ack","request_id":"x","status":"confirmed","last_seq":%d}`, last)
	}
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte(ack)); err != nil {
		return
	}
	for _, f := range s.afterAck {
		if err := c.Write(ctx, websocket.MessageText, f); err != nil {
			return
		}
	}
}

// send writes frame on the newest connection.
func (s *testServer) send(frame []byte) error {
	s.mu.Lock()
	c := s.conns[len(s.conns)-1]
	s.mu.Unlock()
	return c.Write(context.Background(), websocket.MessageText, frame)
}

// kill stops the server like a crash (no close frames) and then forgets the
// last forget recorded messages, as if they had never been processed.
func (s *testServer) kill(forget int) {
	s.mu.Lock()
	hs, conns := s.hs, s.conns
	s.closing = true
	s.mu.Unlock()
	if hs == nil {
		return
	}
	hs.Listener.Close()
	for _, c := range conns {
		_ = c.CloseNow()
	}
	hs.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hs = nil
	for forget > 0 && len(s.order) > 0 {
		f := s.order[len(s.order)-1]
		s.order = s.order[:len(s.order)-1]
		delete(s.durable, f.seq)
		forget--
	}
}

// restart listens again on the same address.
func (s *testServer) restart() {
	var ln net.Listener
	waitFor(s.t, 5*time.Second, "re-listen on "+s.addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", s.addr)
		return err == nil
	})
	hs := httptest.NewUnstartedServer(s)
	hs.Listener.Close()
	hs.Listener = ln
	s.mu.Lock()
	s.hs = hs
	s.closing = false
	s.mu.Unlock()
	hs.Start()
}

func (s *testServer) snapshot() (hellos, got, order []rxFrame) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]rxFrame(nil), s.hellos...), append([]rxFrame(nil), s.got...),
		append([]rxFrame(nil), s.order...)
}

// proxy forwards TCP connections to target until told to stall them.
type proxy struct {
	ln     net.Listener
	target string
	done   chan struct{}
	mu     sync.Mutex
	pairs  []*proxyPair
	wg     sync.WaitGroup
}

type proxyPair struct {
	a, b    net.Conn
	stalled atomic.Bool
}

func newProxy(t *testing.T, target string) *proxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, done: make(chan struct{})}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) url() string { return "ws://" + p.ln.Addr().String() + "/ws" }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		a, err := p.ln.Accept()
		if err != nil {
			return
		}
		b, err := net.Dial("tcp", p.target)
		if err != nil {
			a.Close()
			continue
		}
		pr := &proxyPair{a: a, b: b}
		p.mu.Lock()
		select {
		case <-p.done: // close already swept the pairs
			p.mu.Unlock()
			a.Close()
			b.Close()
			return
		default:
		}
		p.pairs = append(p.pairs, pr)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(a, b, pr)
		go p.pipe(b, a, pr)
	}
}

// pipe copies src to dst; once the pair is stalled it stops reading and
// forwarding but keeps both sockets open: a half-open peer.
func (p *proxy) pipe(dst, src net.Conn, pr *proxyPair) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if pr.stalled.Load() {
			<-p.done
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			dst.Close()
			return
		}
	}
}

// stall freezes every connection open now; new ones are forwarded.
func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		pr.stalled.Store(true)
	}
}

func (p *proxy) close() {
	select {
	case <-p.done:
		return
	default:
	}
	p.mu.Lock()
	close(p.done)
	p.ln.Close()
	for _, pr := range p.pairs {
		pr.a.Close()
		pr.b.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// logRec is a zerolog sink that keeps each line with its arrival time.
type logRec struct {
	mu    sync.Mutex
	lines []logLine
	raw   []byte // every line as written
}

type logLine struct {
	at     time.Time
	fields map[string]any
}

func (r *logRec) Write(p []byte) (int, error) {
	var m map[string]any
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.lines = append(r.lines, logLine{at: time.Now(), fields: m})
	r.raw = append(r.raw, p...)
	r.mu.Unlock()
	return len(p), nil
}

// text returns everything written so far.
func (r *logRec) text() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return string(r.raw)
}

// with returns the lines whose message is msg.
func (r *logRec) with(msg string) []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logLine
	for _, l := range r.lines {
		if l.fields["message"] == msg {
			out = append(out, l)
		}
	}
	return out
}

var _ io.Writer = (*logRec)(nil)

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// running is a Link whose Run goroutine the test controls.
type running struct {
	*Link
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg Config) *running {
	t.Helper()
	if cfg.Hello == nil {
		var n atomic.Int64
		cfg.Hello = func() []byte {
			return []byte(fmt.Sprintf(`{"type":"app_ready","request_id":"r%d","instance_id":"t"}`, n.Add(1)))
		}
	}
	l := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Link: l, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- l.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // keep it for a second stop
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
		return errors.New("unreachable")
	}
}
