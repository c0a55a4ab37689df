package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
)

// Test fixtures: a TCP proxy that can stall, a log recorder, a Link run by the test.
// The server is linktest's.

// n is the "n" of a test message (ev).
func n(f linktest.Frame) int {
	var m struct {
		N int `json:"n"`
	}
	_ = json.Unmarshal(f.Raw, &m)
	return m.N
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
