// Package linktest is the fake FastAPI server of the Go tests: a WebSocket endpoint
// that answers each app_ready with an execute_ack as told (Ack), records every frame
// and ping it reads, lets a test send requests, and can die like a crashed server and
// come back on the same address. Optionally it speaks TLS and gates upgrade requests
// (a bearer token). It plays the server's part of docs/protocol.md; the end-to-end
// suite has its own servers (test/e2e).
package linktest

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// Ack is how the server answers app_ready.
type Ack int

// The answers to app_ready.
const (
	// Confirm confirms, with last_seq: the highest seq recorded (Order).
	Confirm Ack = iota
	// ConfirmNoLastSeq confirms without last_seq, as a server written from the
	// specification alone does.
	ConfirmNoLastSeq
	// Reject refuses with CONFIG_MISMATCH.
	Reject
	// RejectMalformed refuses with members of the wrong JSON types.
	RejectMalformed
	// Silent never answers (and keeps reading).
	Silent
)

// Options configure a Server.
type Options struct {
	Ack Ack
	// AfterAck is written right after a confirming execute_ack.
	AfterAck [][]byte
	// Gate sees every upgrade request first and refuses it with an HTTP status and a
	// body, unless it returns 0.
	Gate func(*http.Request) (status int, body string)
	// TLS, when set, makes the server speak wss://.
	TLS *tls.Config
}

// Frame is one frame the server read.
type Frame struct {
	Conn int       // the connection, from 1
	Type string    // its "type"
	Seq  uint64    // its "seq", 0 when none
	At   time.Time // when it arrived
	Raw  []byte

	requestID string
}

// bigFrame is the size from which Map leaves a frame undecoded.
const bigFrame = 64 << 10

// Map decodes f. A frame over 64 KiB (a full analysis_status) gives only "type",
// "request_id" and its bytes under "_raw": decoding it into a map costs a benchmark's
// client more than the instance spends making it. "_arrived" is f.At. Nil when f is
// not a JSON object.
func (f Frame) Map() map[string]any {
	var m map[string]any
	if len(f.Raw) > bigFrame {
		m = map[string]any{"type": f.Type, "request_id": f.requestID, "_raw": f.Raw}
	} else if json.Unmarshal(f.Raw, &m) != nil || m == nil {
		return nil
	}
	m["_arrived"] = f.At
	return m
}

// Upgrade is an upgrade request the server saw, and the status Gate refused it with
// (0: let through).
type Upgrade struct {
	Header http.Header
	Status int
}

// Server is a fake FastAPI WebSocket server. Its methods may be called from any
// goroutine.
type Server struct {
	tb     testing.TB // nil for a Server from Start
	o      Options
	scheme string
	addr   string

	mu        sync.Mutex
	ack       Ack
	hs        *httptest.Server
	conns     []*websocket.Conn
	confirmed *websocket.Conn // the newest connection with a confirmed handshake
	all       []Frame         // every frame, app_ready included, in arrival order
	next      int             // all[next] is the one Next returns next
	arrived   chan struct{}   // closed and replaced when a frame arrives
	hellos    []Frame
	got       []Frame // every frame but app_ready, duplicates included
	durable   map[uint64]bool
	order     []Frame // first arrival of each seq, less what Kill forgot
	closes    []websocket.StatusCode
	upgrades  []Upgrade
	pings     []time.Time
	// closing is set by Kill before it waits for the handlers: a handler that
	// accepts after that closes its connection instead of joining wg, so no wg.Add
	// races with wg.Wait.
	closing bool
	wg      sync.WaitGroup
}

// New starts a Server for a test: it is killed when the test ends, and Send and
// Expect fail tb.
func New(tb testing.TB, o Options) *Server {
	s := start(tb, o)
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server outside a test (an Example); Close it. Send and Expect panic
// where they would fail a test.
func Start(o Options) *Server { return start(nil, o) }

func start(tb testing.TB, o Options) *Server {
	s := &Server{tb: tb, o: o, ack: o.Ack, scheme: "ws", durable: map[uint64]bool{}, arrived: make(chan struct{})}
	if o.TLS != nil {
		s.scheme = "wss"
	}
	s.hs = s.newHTTP(nil)
	s.addr = s.hs.Listener.Addr().String()
	return s
}

// newHTTP starts the HTTP server on ln (a new port when nil).
func (s *Server) newHTTP(ln net.Listener) *httptest.Server {
	hs := httptest.NewUnstartedServer(http.HandlerFunc(s.serveHTTP))
	if ln != nil {
		hs.Listener.Close()
		hs.Listener = ln
	}
	if s.o.TLS != nil {
		hs.TLS = s.o.TLS
		hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes tests make
		hs.StartTLS()
	} else {
		hs.Start()
	}
	return hs
}

// URL is the server's WebSocket URL.
func (s *Server) URL() string { return s.scheme + "://" + s.addr + "/ws" }

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr }

// SetAck changes how the next app_ready is answered.
func (s *Server) SetAck(a Ack) {
	s.mu.Lock()
	s.ack = a
	s.mu.Unlock()
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	status, body := 0, ""
	if s.o.Gate != nil {
		status, body = s.o.Gate(r)
	}
	s.mu.Lock()
	s.upgrades = append(s.upgrades, Upgrade{Header: r.Header.Clone(), Status: status})
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, body, status)
		return
	}
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OnPingReceived: func(context.Context, []byte) bool {
		s.mu.Lock()
		s.pings = append(s.pings, time.Now())
		s.mu.Unlock()
		return true
	}})
	if err != nil {
		return
	}
	c.SetReadLimit(64 << 20)
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
	s.read(c, id)
}

// read records the frames of connection c (number id) until it ends.
func (s *Server) read(c *websocket.Conn, id int) {
	for {
		_, data, err := c.Read(context.Background())
		at := time.Now() // arrival, before any decoding
		if err != nil {
			s.mu.Lock()
			s.closes = append(s.closes, websocket.CloseStatus(err))
			if s.confirmed == c {
				s.confirmed = nil
			}
			s.mu.Unlock()
			return
		}
		var hdr struct {
			Type      string `json:"type"`
			Seq       uint64 `json:"seq"`
			RequestID any    `json:"request_id"`
		}
		if err := json.Unmarshal(data, &hdr); err != nil {
			if s.tb != nil {
				s.tb.Errorf("linktest: the server got a frame that is not a JSON object: %q", data)
			}
			continue
		}
		f := Frame{Conn: id, Type: hdr.Type, Seq: hdr.Seq, At: at, Raw: data}
		f.requestID, _ = hdr.RequestID.(string)
		s.mu.Lock()
		s.all = append(s.all, f)
		close(s.arrived)
		s.arrived = make(chan struct{})
		if f.Type != protocol.TypeAppReady {
			s.got = append(s.got, f)
			if !s.durable[f.Seq] {
				s.durable[f.Seq] = true
				s.order = append(s.order, f)
			}
			s.mu.Unlock()
			continue
		}
		s.hellos = append(s.hellos, f)
		// last_seq counts the messages recorded before this app_ready.
		var last uint64
		for q := range s.durable {
			last = max(last, q)
		}
		ack := s.ack
		s.mu.Unlock()
		s.answer(c, ack, f, last)
	}
}

// answer writes the execute_ack for hello, then AfterAck.
func (s *Server) answer(c *websocket.Conn, how Ack, hello Frame, last uint64) {
	var h struct {
		RequestID  string `json:"request_id"`
		InstanceID string `json:"instance_id"`
	}
	_ = json.Unmarshal(hello.Raw, &h)
	yes, no := true, false
	ack := protocol.ExecuteAck{RequestID: h.RequestID, InstanceID: h.InstanceID, ConfigVerified: &yes,
		StreamsCountVerified: &yes, Status: protocol.StatusConfirmed, Timestamp: protocol.Timestamp(time.Now())}
	var frame []byte
	switch how {
	case Silent:
		return
	case RejectMalformed:
		frame = []byte(`{"type":"execute_ack","status":"error","error_code":5,"error_message":["no"]}`)
	case Reject:
		ack.Status, ack.ConfigVerified, ack.StreamsCountVerified = protocol.StatusError, &no, nil
		ack.ErrorCode, ack.ErrorMessage = "CONFIG_MISMATCH", "Config path does not match the running instance"
	case Confirm:
		n := int64(last)
		ack.LastSeq = &n
	}
	if frame == nil {
		frame, _ = json.Marshal(struct {
			Type string `json:"type"`
			protocol.ExecuteAck
		}{protocol.TypeExecuteAck, ack})
	}
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, frame); err != nil {
		return
	}
	if how != Confirm && how != ConfirmNoLastSeq {
		return
	}
	for _, f := range s.o.AfterAck {
		if err := c.Write(ctx, websocket.MessageText, f); err != nil {
			return
		}
	}
	s.mu.Lock()
	s.confirmed = c
	s.mu.Unlock()
}

// Write writes frame to the instance on the newest connection whose handshake was
// confirmed, waiting up to 10 s for one.
func (s *Server) Write(frame []byte) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		c := s.confirmed
		s.mu.Unlock()
		if c != nil {
			return c.Write(context.Background(), websocket.MessageText, frame)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("linktest: no confirmed connection from the instance")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Send writes the request msg (Write), failing the test if it cannot.
func (s *Server) Send(msg string) {
	if s.tb != nil {
		s.tb.Helper()
	}
	if err := s.Write([]byte(msg)); err != nil {
		s.fail("write: %v", err)
	}
}

// Next returns the next frame read (app_ready included) that Next has not returned
// yet, waiting up to timeout for one; ok is false when none came.
func (s *Server) Next(timeout time.Duration) (f Frame, ok bool) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		s.mu.Lock()
		if s.next < len(s.all) {
			f = s.all[s.next]
			s.next++
			s.mu.Unlock()
			return f, true
		}
		arrived := s.arrived
		s.mu.Unlock()
		select {
		case <-arrived:
		case <-t.C:
			return Frame{}, false
		}
	}
}

// Expect waits for the next frame of type typ (Next) and returns it decoded (Map),
// failing the test after 20 s; the frames of other types before it are appended to
// skipped (when not nil), decoded.
func (s *Server) Expect(typ string, skipped *[]map[string]any) map[string]any {
	if s.tb != nil {
		s.tb.Helper()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		f, ok := s.Next(time.Until(deadline))
		if !ok {
			s.fail("no %s within 20 s", typ)
			return nil
		}
		m := f.Map()
		if m == nil {
			continue
		}
		if f.Type == typ {
			return m
		}
		if skipped != nil {
			*skipped = append(*skipped, m)
		}
	}
}

// Pending is the number of frames read that Next has not returned yet.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all) - s.next
}

func (s *Server) fail(format string, args ...any) {
	if s.tb == nil {
		panic("linktest: " + fmt.Sprintf(format, args...))
	}
	s.tb.Helper()
	s.tb.Fatalf(format, args...)
}

// Hellos returns the app_ready frames read, in order.
func (s *Server) Hellos() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.hellos...)
}

// Frames returns every other frame read, in order, duplicates included.
func (s *Server) Frames() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.got...)
}

// Order returns the first arrival of each seq, in order, less the frames Kill forgot:
// what a server that de-duplicates by seq has handled.
func (s *Server) Order() []Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Frame(nil), s.order...)
}

// Closes returns the close status of each connection that ended, in order.
func (s *Server) Closes() []websocket.StatusCode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]websocket.StatusCode(nil), s.closes...)
}

// Upgrades returns the upgrade requests seen, in order.
func (s *Server) Upgrades() []Upgrade {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Upgrade(nil), s.upgrades...)
}

// Pings returns when each ping from the instance arrived, in order.
func (s *Server) Pings() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.pings...)
}

// Kill stops the server like a crash (no close frames), then forgets the last forget
// frames of Order, as if they had never been handled.
func (s *Server) Kill(forget int) {
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
	s.hs, s.confirmed = nil, nil
	for forget > 0 && len(s.order) > 0 {
		f := s.order[len(s.order)-1]
		s.order = s.order[:len(s.order)-1]
		delete(s.durable, f.Seq)
		forget--
	}
}

// Close stops the server (Kill, forgetting nothing).
func (s *Server) Close() { s.Kill(0) }

// Restart listens again on the same address after Kill.
func (s *Server) Restart() {
	var ln net.Listener
	deadline := time.Now().Add(5 * time.Second)
	for {
		var err error
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			s.fail("re-listen on %s: %v", s.addr, err)
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	s.mu.Lock()
	s.closing = false
	s.mu.Unlock()
	hs := s.newHTTP(ln)
	s.mu.Lock()
	s.hs = hs
	s.mu.Unlock()
}
