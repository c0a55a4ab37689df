package link

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
)

func fast(url string, log *logRec) Config {
	cfg := Config{
		URL:          url,
		AckTimeout:   2 * time.Second,
		PingInterval: 100 * time.Millisecond,
		PingTimeout:  100 * time.Millisecond,
		BackoffMin:   5 * time.Millisecond,
		BackoffMax:   50 * time.Millisecond,
		Log:          zerolog.Nop(),
	}
	if log != nil {
		cfg.Log = zerolog.New(log)
	}
	return cfg
}

func ev(n int) []byte { return []byte(fmt.Sprintf(`{"type":"ev","n":%d}`, n)) }

func TestHandshakeSendReceiveAndNormalClose(t *testing.T) {
	srv := linktest.New(t, linktest.Options{AfterAck: [][]byte{[]byte(`{"type":"query_metrics","request_id":"q1"}`)}})
	l := start(t, fast(srv.URL(), nil))

	// The frame the server writes right behind its ack must not be lost.
	select {
	case f := <-l.Inbox():
		if !bytes.Contains(f, []byte(`"q1"`)) {
			t.Fatalf("inbox got %s", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no frame on the inbox")
	}
	if !l.Connected() {
		t.Fatal("not connected after a confirmed handshake")
	}
	for i := 1; i <= 3; i++ {
		if got := l.Send(ev(i)); got != uint64(i) {
			t.Fatalf("Send ticket = %d, want %d", got, i)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	l.Send([]byte(`{"type":"log","message":"hi"}`))
	waitFor(t, 5*time.Second, "4 frames at the server", func() bool {
		return len(srv.Frames()) == 4
	})
	if err := srv.Write([]byte(`{"type":"query_analysis_status","request_id":"q2"}`)); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-l.Inbox():
		if !bytes.Contains(f, []byte(`"q2"`)) {
			t.Fatalf("inbox got %s", f)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no second frame on the inbox")
	}

	hellos, got := srv.Hellos(), srv.Frames()
	if len(hellos) != 1 || hellos[0].Seq != 1 || !bytes.Contains(hellos[0].Raw, []byte(`"request_id":"r1"`)) {
		t.Fatalf("app_ready frames: %+v", hellos)
	}
	for i, f := range got {
		if f.Seq != uint64(i+2) {
			t.Errorf("frame %d (%s) seq %d, want %d", i, f.Raw, f.Seq, i+2)
		}
	}
	if got[3].Type != "log" {
		t.Errorf("last frame %s, want the log line", got[3].Raw)
	}

	if err := l.stop(t); err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	waitFor(t, 5*time.Second, "server to see the close", func() bool {
		return len(srv.Closes()) == 1
	})
	if c := srv.Closes()[0]; c != websocket.StatusNormalClosure {
		t.Fatalf("server saw close status %v, want %v", c, websocket.StatusNormalClosure)
	}
}

func TestRejectedHandshake(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Ack: linktest.Reject})
	l := start(t, fast(srv.URL(), nil))
	var err error
	select {
	case err = <-l.done:
		l.done <- err
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return on a rejected handshake")
	}
	var rej *Rejected
	if !errors.As(err, &rej) {
		t.Fatalf("Run returned %v, want *Rejected", err)
	}
	if rej.Code != "CONFIG_MISMATCH" || rej.Message != "Config path does not match the running instance" {
		t.Fatalf("Rejected = %+v", rej)
	}
	var ack map[string]any
	if json.Unmarshal(rej.Ack, &ack) != nil || ack["status"] != "error" {
		t.Fatalf("Rejected.Ack = %s", rej.Ack)
	}
	if !strings.Contains(rej.Error(), "CONFIG_MISMATCH") {
		t.Fatalf("Error() = %q", rej.Error())
	}
	hellos := srv.Hellos()
	if len(hellos) != 1 {
		t.Fatalf("%d connections after a rejection, want 1", len(hellos))
	}
	if l.Connected() {
		t.Fatal("connected after a rejection")
	}
}

func TestMalformedRefusalEndsHandshake(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Ack: linktest.RejectMalformed})
	l := start(t, fast(srv.URL(), nil))
	select {
	case err := <-l.done:
		l.done <- err
		var rej *Rejected
		if !errors.As(err, &rej) || rej.Code != "5" || rej.Message != `["no"]` {
			t.Fatalf("Run returned %v, want *Rejected with the raw members", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a malformed refusal did not end the handshake")
	}
}

func TestLateAckReachesInbox(t *testing.T) {
	afterAck := [][]byte{[]byte(`{"type":"execute_ack","status":"yes"}`), []byte(`{"type":"query_metrics","request_id":"m"}`)}
	srv := linktest.New(t, linktest.Options{AfterAck: afterAck})
	l := start(t, fast(srv.URL(), nil))
	for _, want := range afterAck {
		select {
		case got := <-l.Inbox():
			if string(got) != string(want) {
				t.Fatalf("inbox got %s, want %s", got, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s in the inbox", want)
		}
	}
}

func TestNoAckTimesOutAndRetries(t *testing.T) {
	srv := linktest.New(t, linktest.Options{Ack: linktest.Silent})
	rec := &logRec{}
	cfg := fast(srv.URL(), rec)
	cfg.AckTimeout = 150 * time.Millisecond
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "three app_ready frames", func() bool {
		return len(srv.Hellos()) >= 3
	})
	hellos := srv.Hellos()
	for i := 1; i < len(hellos); i++ {
		if hellos[i].Conn == hellos[i-1].Conn || hellos[i].Seq <= hellos[i-1].Seq {
			t.Errorf("retry %d: conn %d seq %d after conn %d seq %d", i,
				hellos[i].Conn, hellos[i].Seq, hellos[i-1].Conn, hellos[i-1].Seq)
		}
	}
	// The client gave up on each connection only after the full timeout.
	sent, gaveUp := rec.with("link: app_ready sent"), rec.with("link: no execute_ack, closing")
	if len(gaveUp) < 2 {
		t.Fatalf("%d ack timeouts logged, want ≥ 2", len(gaveUp))
	}
	for i := range gaveUp[:2] {
		if wait := gaveUp[i].at.Sub(sent[i].at); wait < cfg.AckTimeout {
			t.Errorf("gave up %v after app_ready, before the ack timeout %v", wait, cfg.AckTimeout)
		}
	}
	if l.Connected() {
		t.Fatal("connected without an ack")
	}
	// The server now confirms: messages queued meanwhile go out in order.
	l.Send(ev(1))
	l.Send(ev(2))
	srv.SetAck(linktest.Confirm)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "two messages", func() bool {
		return len(srv.Order()) == 2
	})
	hellos, order := srv.Hellos(), srv.Order()
	if n(order[0]) != 1 || n(order[1]) != 2 || order[0].Seq <= hellos[len(hellos)-1].Seq {
		t.Fatalf("after the ack: %+v (last app_ready seq %d)", order, hellos[len(hellos)-1].Seq)
	}
}

// Kill the server mid-stream, forget what it received last, restart it on
// the same port: with last_seq every message arrives exactly once, in order.
func TestServerRestartRedelivery(t *testing.T) {
	const total, forget = 2000, 25
	srv := linktest.New(t, linktest.Options{})
	rec := &logRec{}
	l := start(t, fast(srv.URL(), rec))
	waitFor(t, 5*time.Second, "connected", l.Connected)

	for i := 1; i <= total/2; i++ {
		l.Send(ev(i))
	}
	waitFor(t, 10*time.Second, "first messages", func() bool {
		return len(srv.Order()) >= 300
	})
	srv.Kill(forget)
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !l.Connected() })
	for i := total/2 + 1; i <= total; i++ {
		l.Send(ev(i))
	}
	srv.Restart()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "every message", func() bool {
		return len(srv.Order()) >= total
	})
	hellos, got, order := srv.Hellos(), srv.Frames(), srv.Order()
	if len(order) != total {
		t.Fatalf("%d distinct messages, want %d", len(order), total)
	}
	for i, f := range order {
		if n(f) != i+1 {
			t.Fatalf("message %d is n=%d (seq %d): order broken", i+1, n(f), f.Seq)
		}
		if i > 0 && f.Seq <= order[i-1].Seq {
			t.Fatalf("seq %d after %d", f.Seq, order[i-1].Seq)
		}
	}
	if len(hellos) < 2 {
		t.Fatalf("%d handshakes, want a reconnection", len(hellos))
	}
	// Redelivery happened: the link resent at least what the server forgot.
	resent := 0
	for _, c := range rec.with("link: handshake confirmed") {
		resent += int(c.fields["redeliver"].(float64))
	}
	if resent < forget {
		t.Fatalf("redelivered %d messages, want ≥ %d (server forgot %d)", resent, forget, forget)
	}
	t.Logf("%d frames received for %d messages over %d handshakes, %d redelivered",
		len(got), total, len(hellos), resent)
}

// A peer that stops forwarding (half-open connection) is noticed by the
// heartbeat within PingInterval+PingTimeout, and the link reconnects.
func TestStalledConnectionNoticed(t *testing.T) {
	srv := linktest.New(t, linktest.Options{})
	px := newProxy(t, srv.Addr())
	rec := &logRec{}
	cfg := fast(px.url(), rec)
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	l.Send(ev(1))
	waitFor(t, 5*time.Second, "first message", func() bool {
		return len(srv.Frames()) == 1
	})

	stalled := time.Now()
	px.stall()
	// The reconnect may follow within milliseconds: read the disconnect
	// from the log rather than polling Connected.
	waitFor(t, 5*time.Second, "disconnect", func() bool { return len(rec.with("link: disconnected")) > 0 })
	down := rec.with("link: disconnected")[0]
	noticed := down.at.Sub(stalled)
	const slack = 300 * time.Millisecond // scheduling under -race on a busy box
	if limit := cfg.PingInterval + cfg.PingTimeout + slack; noticed > limit {
		t.Fatalf("stall noticed after %v, want ≤ %v", noticed, limit)
	}
	if !strings.Contains(fmt.Sprint(down.fields["reason"]), "heartbeat") {
		t.Fatalf("disconnect not attributed to the heartbeat: %v", down.fields)
	}
	waitFor(t, 5*time.Second, "second handshake", func() bool {
		return len(srv.Hellos()) == 2
	})
	l.Send(ev(2))
	waitFor(t, 5*time.Second, "reconnect and delivery", func() bool {
		return len(srv.Order()) == 2 && l.Connected()
	})
	t.Logf("stall noticed after %v (interval %v + timeout %v)", noticed, cfg.PingInterval, cfg.PingTimeout)
}

// Against a refused port the delay ceiling doubles up to the cap, every
// delay is drawn below its ceiling, and the measured attempt gaps follow.
func TestBackoffAgainstRefusedPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	rec := &logRec{}
	cfg := fast("ws://"+addr+"/ws", rec)
	cfg.BackoffMin, cfg.BackoffMax = 2*time.Millisecond, 40*time.Millisecond
	cfg.Hello = func() []byte { return []byte(`{"type":"app_ready"}`) }
	l := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	const attempts = 16
	waitFor(t, 10*time.Second, "attempts", func() bool { return len(rec.with("link: connecting")) >= attempts })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v", err)
	}

	conns := rec.with("link: connecting")
	offs := rec.with("link: backing off before reconnecting")
	ms := func(l logLine, k string) time.Duration {
		return time.Duration(l.fields[k].(float64) * float64(time.Millisecond))
	}
	var early, late time.Duration
	for i := 0; i < attempts-1; i++ {
		want := cfg.BackoffMin << i
		if want > cfg.BackoffMax {
			want = cfg.BackoffMax
		}
		delay, ceiling := ms(offs[i], "delay"), ms(offs[i], "ceiling")
		if ceiling != want {
			t.Errorf("attempt %d: ceiling %v, want %v", i+1, ceiling, want)
		}
		if delay < 0 || delay > ceiling {
			t.Errorf("attempt %d: delay %v outside [0, %v]", i+1, delay, ceiling)
		}
		gap := conns[i+1].at.Sub(conns[i].at)
		if gap < delay {
			t.Errorf("attempt %d: next attempt after %v, before its delay %v", i+1, gap, delay)
		}
		if gap > cfg.BackoffMax+200*time.Millisecond {
			t.Errorf("attempt %d: gap %v exceeds the cap %v", i+1, gap, cfg.BackoffMax)
		}
		switch {
		case i < 3:
			early += delay
		case i >= attempts-7:
			late += delay
		}
	}
	// Growth is judged on the drawn delays; the measured gaps were checked against
	// them above. Drawn below ceilings of 2, 4 and 8 ms, the first three average
	// less than the last six, drawn below 40 ms, but for a chance of about 1 in 150,000.
	if early/3 >= late/6 {
		t.Errorf("backoff did not grow: mean delay %v over the first 3 attempts, %v over the last 6", early/3, late/6)
	}
	t.Logf("mean delay %v over the first 3 attempts, %v over the last 6", early/3, late/6)
}

func TestSendNeverBlocksWhileDisconnected(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	l := start(t, fast("ws://"+addr+"/ws", nil))
	const n = 100000
	var worst time.Duration
	began := time.Now()
	for i := 1; i <= n; i++ {
		t0 := time.Now()
		l.Send(ev(i))
		worst = max(worst, time.Since(t0))
	}
	total := time.Since(began)
	if l.Pending() != n {
		t.Fatalf("Pending = %d, want %d", l.Pending(), n)
	}
	// Nothing in Send waits on the network; the bound on one call leaves
	// room for GC and a loaded machine under the race detector.
	if worst > 500*time.Millisecond {
		t.Fatalf("%d Sends took %v, worst %v", n, total, worst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.Flush(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Flush while disconnected = %v", err)
	}
	t.Logf("%d Sends while disconnected: %v total, worst %v", n, total, worst)
}

// A 10 MB frame from the server is delivered and the link stays up.
func TestLargeFrame(t *testing.T) {
	srv := linktest.New(t, linktest.Options{})
	cfg := fast(srv.URL(), nil)
	// The server's pong waits behind the 10 MB frame, which takes seconds to
	// read under the race detector on a busy machine; this test is about the
	// read limit, so keep the heartbeat out of it.
	cfg.PingInterval = time.Minute
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	big := bytes.Repeat([]byte("x"), 10<<20)
	frame := append(append([]byte(`{"type":"push_file","pad":"`), big...), `"}`...)
	if err := srv.Write(frame); err != nil {
		t.Fatal(err)
	}
	select {
	case f := <-l.Inbox():
		if len(f) != len(frame) {
			t.Fatalf("got %d bytes, want %d", len(f), len(frame))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("large frame not delivered")
	}
	l.Send(ev(1))
	waitFor(t, 5*time.Second, "reply after the large frame", func() bool {
		return len(srv.Frames()) == 1
	})
	hellos := srv.Hellos()
	if len(hellos) != 1 || !l.Connected() {
		t.Fatalf("connection did not survive the large frame: %d handshakes", len(hellos))
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"scheme":   {URL: "tcp://127.0.0.1:1", Hello: func() []byte { return []byte(`{}`) }},
		"no hello": {URL: "ws://127.0.0.1:1/ws"},
	} {
		if err := New(cfg).Run(context.Background()); err == nil {
			t.Errorf("%s: Run returned nil", name)
		}
	}
	srv := linktest.New(t, linktest.Options{})
	cfg := fast(srv.URL(), nil)
	cfg.Hello = func() []byte { return []byte(`not json`) }
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := New(cfg).Run(ctx); err == nil || ctx.Err() != nil {
		t.Fatalf("Run with a bad Hello = %v", err)
	}
	l := New(cfg)
	if l.Send([]byte(`[1]`)) != 0 || l.Send([]byte(`{"a":`)) != 0 || l.Pending() != 0 {
		t.Fatal("Send accepted something that is not a JSON object")
	}
}

// A Hello that hands out the same bytes every time, with spare capacity, must find them
// intact on the next connection: seq goes into a copy, never into Hello's slice.
func TestCachedHelloSurvivesReconnect(t *testing.T) {
	srv := linktest.New(t, linktest.Options{})
	cfg := fast(srv.URL(), &logRec{})
	hello := append(make([]byte, 0, 256), `{"type":"app_ready","instance_id":"t"}`...)
	cfg.Hello = func() []byte { return hello }
	l := start(t, cfg)
	waitFor(t, 5*time.Second, "connected", l.Connected)
	srv.Kill(0)
	waitFor(t, 5*time.Second, "disconnect", func() bool { return !l.Connected() })
	srv.Restart()
	waitFor(t, 5*time.Second, "reconnected", l.Connected)
	if string(hello) != `{"type":"app_ready","instance_id":"t"}` {
		t.Fatalf("Hello's bytes were changed: %q", hello)
	}
	if hellos := srv.Hellos(); len(hellos) != 2 {
		t.Fatalf("%d app_ready frames, want 2", len(hellos))
	}
}
