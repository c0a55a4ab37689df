package link

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
	"github.com/cityeyelab/ds-analysis/go/internal/protocol"
)

// distinct checks that the server's first arrivals are messages 1..n in order
// and returns how many frames were duplicates.
func distinct(t *testing.T, srv *linktest.Server, want int) (dups int) {
	t.Helper()
	got, order := srv.Frames(), srv.Order()
	if len(order) != want {
		t.Fatalf("%d distinct messages, want %d", len(order), want)
	}
	for i, f := range order {
		if n(f) != i+1 {
			t.Fatalf("message %d is n=%d (seq %d): lost or out of order", i+1, n(f), f.Seq)
		}
	}
	return len(got) - len(order)
}

// A server without last_seq is killed right after a burst and forgets what it
// read last (read by its WebSocket layer, never handled): every message still
// arrives, in order, the lost ones redelivered under their seq.
func TestNoLastSeqRedeliversUnhandled(t *testing.T) {
	const total, forget = 600, 40
	srv := linktest.New(t, linktest.Options{Ack: linktest.ConfirmNoLastSeq})
	rec := &logRec{}
	l := start(t, fast(srv.URL(), rec))
	waitFor(t, 5*time.Second, "connected", l.Connected)
	for i := 1; i <= total/2; i++ {
		l.Send(ev(i))
	}
	waitFor(t, 10*time.Second, "the burst read", func() bool {
		return len(srv.Frames()) == total/2
	})
	srv.Kill(forget)
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !l.Connected() })
	for i := total/2 + 1; i <= total; i++ {
		l.Send(ev(i))
	}
	srv.Restart()
	waitFor(t, 10*time.Second, "every message", func() bool {
		return len(srv.Order()) >= total
	})
	dups := distinct(t, srv, total)
	resent := 0
	for _, c := range rec.with("link: handshake confirmed") {
		resent += int(c.fields["redeliver"].(float64))
	}
	if resent < forget {
		t.Fatalf("redelivered %d, want ≥ %d (the server forgot %d)", resent, forget, forget)
	}
	// A redelivered frame keeps its seq: each duplicate repeats one.
	got := srv.Frames()
	seen := map[uint64]int{}
	for _, f := range got {
		seen[f.Seq]++
		if seen[f.Seq] == 2 && bytes.Count(f.Raw, []byte(`"seq"`)) != 1 {
			t.Fatalf("redelivered frame %s", f.Raw)
		}
	}
	t.Logf("%d messages, %d redelivered, %d duplicates at the server", total, resent, dups)
}

// Messages that a pong confirmed more than HandleWindow before the connection
// ended are not sent again.
func TestNoLastSeqSkipsHandled(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Ack: linktest.ConfirmNoLastSeq})
	cfg := fast(srv.URL(), nil)
	cfg.HandleWindow = 100 * time.Millisecond
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	for i := 1; i <= 10; i++ {
		l.Send(ev(i))
	}
	// Settled: a pong for all ten, then life from the peer a window later. The server
	// sees both as pings: a ping after message 10 confirms it unless it was on its way
	// before (at most one from each of the link's two pingers), and a ping more than a
	// window after a confirming one is life late enough.
	waitFor(t, 5*time.Second, "messages 1-10 settled", func() bool {
		got := srv.Frames()
		if len(got) < 10 {
			return false
		}
		var after []time.Time
		for _, p := range srv.Pings() {
			if p.After(got[9].At) {
				after = append(after, p)
			}
		}
		return len(after) > 3 && after[len(after)-1].Sub(after[2]) > cfg.HandleWindow+50*time.Millisecond
	})
	l.Send(ev(11))
	l.Send(ev(12))
	waitFor(t, 5*time.Second, "messages 11-12", func() bool {
		return len(srv.Frames()) == 12
	})
	srv.Kill(0)
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !l.Connected() })
	srv.Restart()
	l.Send(ev(13))
	waitFor(t, 5*time.Second, "message 13", func() bool {
		return len(srv.Order()) == 13
	})
	distinct(t, srv, 13)
	got := srv.Frames()
	count := map[int]int{}
	for _, f := range got {
		count[n(f)]++
	}
	for n := 1; n <= 10; n++ {
		if count[n] != 1 {
			t.Fatalf("settled message %d received %d times", n, count[n])
		}
	}
	t.Logf("unsettled 11, 12 received %d and %d times", count[11], count[12])
}

// Messages written into a half-open connection (never forwarded) reach a
// server without last_seq after the heartbeat drops it.
func TestNoLastSeqHalfOpen(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Ack: linktest.ConfirmNoLastSeq})
	px := newProxy(t, srv.Addr())
	l := start(t, fast(px.url(), nil))
	waitFor(t, 5*time.Second, "connected", l.Connected)
	l.Send(ev(1))
	waitFor(t, 5*time.Second, "first message", func() bool {
		return len(srv.Frames()) == 1
	})
	px.stall()
	for i := 2; i <= 20; i++ {
		l.Send(ev(i))
	}
	waitFor(t, 10*time.Second, "every message after the reconnect", func() bool {
		return len(srv.Order()) >= 20
	})
	distinct(t, srv, 20)
}

// A frame over the read limit closes the connection with 1009; the link
// reconnects and carries on. Frames up to the limit pass.
func TestOversizedFrameRefused(t *testing.T) {
	srv := linktest.New(t, linktest.Options{})
	rec := &logRec{}
	cfg := fast(srv.URL(), rec)
	cfg.ReadLimit = 256 << 10
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	pad := func(n int) []byte {
		f := append([]byte(`{"type":"x","pad":"`), bytes.Repeat([]byte("y"), n)...)
		f = append(f, `"}`...)
		return f
	}
	ok := pad(int(cfg.ReadLimit) - len(pad(0)))
	if err := srv.Write(ok); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-l.Inbox():
		if !bytes.Equal(f, ok) {
			t.Fatalf("frame at the limit: got %d bytes, want %d", len(f), len(ok))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("frame at the limit not delivered")
	}
	_ = srv.Write(pad(4 << 20)) // may fail: the link closes while it is written
	waitFor(t, 5*time.Second, "a second handshake", func() bool {
		return len(srv.Hellos()) == 2
	})
	closes := srv.Closes()
	if len(closes) == 0 || closes[0] != websocket.StatusMessageTooBig {
		t.Fatalf("server saw close statuses %v, want 1009 first", closes)
	}
	if len(rec.with("link: frame over the read limit refused, closing")) != 1 {
		t.Fatal("refusal not logged")
	}
	l.Send(ev(1))
	waitFor(t, 5*time.Second, "a message after the refusal", func() bool {
		return len(srv.Frames()) == 1
	})
}

func TestReadChunked(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, firstChunk - 1, firstChunk, firstChunk + 1, 3*firstChunk + 5,
		maxChunk, 3*maxChunk + 7} {
		want := make([]byte, n)
		for i := range want {
			want[i] = byte(rnd.Uint32())
		}
		got, err := readChunked(bytes.NewReader(want))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(got), err)
		}
		if n > firstChunk && cap(got) != n {
			t.Fatalf("%d bytes: capacity %d", n, cap(got))
		}
	}
	boom := fmt.Errorf("boom")
	if _, err := readChunked(&failing{n: 5000, err: boom}); err != boom {
		t.Fatalf("error = %v", err)
	}
}

type failing struct {
	n   int
	err error
}

func (f *failing) Read(p []byte) (int, error) {
	if f.n == 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

// After a connection that stayed up, the first reconnect attempt goes out at
// once even with a long BackoffMin; after a short one the link backs off.
func TestFirstReconnectAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name string
		up   time.Duration // how long the connection lasts
		want string
	}{
		{"stable", stableAfter + 100*time.Millisecond, "link: reconnecting at once"},
		{"flapping", 0, "link: backing off before reconnecting"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := linktest.New(t, linktest.Options{})
			rec := &logRec{}
			cfg := fast(srv.URL(), rec)
			cfg.BackoffMin, cfg.BackoffMax = 3*time.Second, 3*time.Second
			cfg.Hello = func() []byte { return []byte(`{"type":"app_ready"}`) }
			l := New(cfg)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- l.Run(ctx) }()
			defer func() { cancel(); <-done }()
			waitFor(t, 5*time.Second, "connected", l.Connected)
			time.Sleep(tc.up) // the connection's life is what the link judges
			srv.Kill(0)
			waitFor(t, 5*time.Second, tc.want, func() bool { return len(rec.with(tc.want)) == 1 })
			if tc.up < stableAfter {
				return
			}
			waitFor(t, 5*time.Second, "second attempt", func() bool { return len(rec.with("link: connecting")) == 2 })
			down := rec.with("link: disconnected")[0].at
			again := rec.with("link: connecting")[1].at
			if gap := again.Sub(down); gap > time.Second {
				t.Fatalf("first attempt %v after the disconnect, BackoffMin %v", gap, cfg.BackoffMin)
			}
		})
	}
}

// The handled watermark: a pong settles the frames before its ping once the
// peer shows life a window later; the peer closing the connection counts.
func TestEvidence(t *testing.T) {
	t0 := time.Now()
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	e := evidence{window: 100 * time.Millisecond}
	if e.handled() != 0 {
		t.Fatal("handled before any pong")
	}
	e.pong(5, at(0))
	e.pong(9, at(50))
	if got := e.handled(); got != 0 {
		t.Fatalf("handled %d with no life a window after a pong", got)
	}
	e.frame(at(120)) // settles the pong at 0, not the one at 50
	if got := e.handled(); got != 5 {
		t.Fatalf("handled %d, want 5", got)
	}
	e.pong(9, at(130)) // nothing new: the pong at 50 still stands for 9
	e.peerClosed(at(160))
	if got := e.handled(); got != 9 {
		t.Fatalf("handled %d after the peer closed, want 9", got)
	}
	// Old points are pruned to the newest settled one.
	for i := 1; i <= 1000; i++ {
		e.pong(uint64(9+i), at(200+10*i))
	}
	if n := len(e.points); n > 12 {
		t.Fatalf("%d points kept", n)
	}
	if got := e.handled(); got != 1009-10 {
		t.Fatalf("handled %d, want %d", got, 1009-10)
	}
}

// The default read limit admits the largest push_file the protocol accepts,
// written as a Python server writes it (json.dumps separators, no escapes),
// with paths of the length MaxPushItemBytes is sized for.
func TestReadLimitFitsLargestPush(t *testing.T) {
	long := func(prefix string, n int) string { return prefix + strings.Repeat("p", n-len(prefix)) }
	var b strings.Builder
	b.WriteString(`{"type": "push_file", "request_id": "` + strings.Repeat("r", 64) + `", "stream_id": 0, "camera_id": 9007199254740991, "files_count": 10000, "files": [`)
	for i := 0; i < protocol.DefaultMaxFilesPerPush; i++ {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, `{"file_type": "file", "file_id": %d, "file_path": "%s", "file_name": "%s", "output_path": "%s"}`,
			9007199254740991-i, long("/videos/", 450), long("f", 450), long("/out/", 450))
	}
	b.WriteString(`, {"file_type": "eos"}]}`)
	frame := []byte(b.String())
	if int64(len(frame)) > DefaultReadLimit {
		t.Fatalf("largest push_file is %d bytes, read limit %d", len(frame), DefaultReadLimit)
	}
	req, rej := protocol.Decode(frame, protocol.Limits{Streams: 1})
	if rej != nil {
		t.Fatalf("refused: %+v", rej)
	}
	if p := req.(*protocol.PushFile); len(p.Files) != protocol.DefaultMaxFilesPerPush+1 {
		t.Fatalf("%d items", len(p.Files))
	}
	t.Logf("largest push_file %d bytes, read limit %d", len(frame), DefaultReadLimit)
}
