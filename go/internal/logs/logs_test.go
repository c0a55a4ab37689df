package logs

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
)

func open(t *testing.T, o Options) *Logs {
	t.Helper()
	if o.Root == "" {
		o.Root = t.TempDir()
	}
	if o.AppID == "" {
		o.AppID = "a1"
	}
	l, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// records reads a log file as JSON records; every line must be one.
func records(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("%s: line %d is not JSON: %q", path, len(out)+1, sc.Text())
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNames(t *testing.T) {
	root := t.TempDir()
	start := time.Date(2025, 7, 28, 12, 0, 3, 0, time.FixedZone("KST", 9*3600))
	l := open(t, Options{Root: root, AppID: "cam-a", PID: 4242, Start: start})
	const name = "instid_cam-a-pid_4242-date_250728_120003"
	if l.Dir() != filepath.Join(root, name) || l.Path() != filepath.Join(root, name, name+".log") {
		t.Fatalf("Dir %q Path %q", l.Dir(), l.Path())
	}
	if _, err := os.Stat(l.Path()); err != nil {
		t.Fatalf("log file not created by Open: %v", err)
	}
	log := l.Logger()
	log.Warn().Str("camera", "7").Msg("hello")
	recs := records(t, l.Path())
	if len(recs) != 1 || recs[0]["message"] != "hello" || recs[0]["source"] != "supervisor" ||
		recs[0]["level"] != "warn" || recs[0]["camera"] != "7" {
		t.Fatalf("record %v", recs)
	}
	if _, err := time.Parse(time.RFC3339Nano, fmt.Sprint(recs[0]["time"])); err != nil {
		t.Fatalf("time %v: %v", recs[0]["time"], err)
	}

	for _, bad := range []Options{{Root: root}, {Root: root, AppID: "a/b"}, {AppID: "x"}, {Root: root, AppID: ".."}} {
		if _, err := Open(bad); err == nil {
			t.Errorf("Open(%+v) succeeded", bad)
		}
	}
	if _, err := Open(Options{Root: "/proc/no-such-root", AppID: "x"}); err == nil {
		t.Error("Open under an unwritable root succeeded")
	}
}

// Over 25 MB from two concurrent writers: exactly the live file and .log.1 …
// .log.10 remain, none over MaxSize, newest data in .log then .log.1, and
// each writer's records are contiguous across the kept files.
func TestRotation(t *testing.T) {
	l := open(t, Options{})
	const max = DefaultMaxSize
	pad := strings.Repeat("p", 2000)
	const perWriter = 6500 // ~2 KB each, ~26 MB in all
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		log := l.Logger()
		for i := 1; i <= perWriter; i++ {
			log.Info().Int("n", i).Str("pad", pad).Msg("sup")
		}
	}()
	go func() {
		defer wg.Done()
		w := l.EngineWriter()
		for i := 1; i <= perWriter; i++ {
			fmt.Fprintf(w, "eng %d %s\n", i, pad)
		}
	}()
	wg.Wait()

	entries, err := os.ReadDir(l.Dir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	base := filepath.Base(l.Path())
	want := []string{base}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("%s.%d", base, i))
	}
	for _, e := range entries {
		names = append(names, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > max || info.Size() == 0 {
			t.Errorf("%s: %d bytes (limit %d)", e.Name(), info.Size(), max)
		}
	}
	sort.Strings(names)
	sort.Strings(want)
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("files:\n%v\nwant\n%v", names, want)
	}

	// Oldest to newest: .log.10 … .log.1, .log.
	lastSup, lastEng, total := 0, 0, 0
	for i := 10; i >= 0; i-- {
		p := l.Path()
		if i > 0 {
			p = fmt.Sprintf("%s.%d", p, i)
		}
		for _, r := range records(t, p) {
			total++
			switch r["source"] {
			case "supervisor":
				n := int(r["n"].(float64))
				if lastSup != 0 && n != lastSup+1 {
					t.Fatalf("%s: supervisor record %d after %d", filepath.Base(p), n, lastSup)
				}
				lastSup = n
			case "engine":
				var n int
				fmt.Sscanf(r["message"].(string), "eng %d", &n)
				if lastEng != 0 && n != lastEng+1 {
					t.Fatalf("%s: engine line %d after %d", filepath.Base(p), n, lastEng)
				}
				lastEng = n
			}
		}
	}
	if lastSup != perWriter || lastEng != perWriter {
		t.Fatalf("newest records: supervisor %d engine %d, want %d", lastSup, lastEng, perWriter)
	}
	if total >= 2*perWriter {
		t.Fatalf("%d records kept of %d: nothing was dropped with the oldest file", total, 2*perWriter)
	}
}

// fakeClock drives the live rate limit.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func withClock(l *Logs) *fakeClock {
	c := &fakeClock{t: time.Unix(1e9, 0)}
	l.mu.Lock()
	l.now, l.refilled = c.now, c.t
	l.mu.Unlock()
	return c
}

func drain(ch <-chan Line) []Line {
	var out []Line
	for {
		select {
		case l := <-ch:
			out = append(out, l)
		default:
			return out
		}
	}
}

func TestLiveRateLimit(t *testing.T) {
	l := open(t, Options{LiveLevel: zerolog.WarnLevel, LiveBurst: 5, LiveRate: 10})
	clock := withClock(l)
	log := l.Logger()

	for i := 0; i < 20; i++ {
		log.Warn().Int("i", i).Msg("w")
		log.Info().Msg("below the live level")
	}
	got := drain(l.Live())
	if len(got) != 5 {
		t.Fatalf("burst delivered %d lines, want 5", len(got))
	}
	for i, g := range got {
		if g.Dropped != 0 || g.Message != fmt.Sprintf("w i=%d", i) || g.Level != "warn" || g.Source != "supervisor" {
			t.Fatalf("line %d: %+v", i, g)
		}
	}
	// No time passed: no token, dropped.
	log.Error().Msg("no token")
	if got := drain(l.Live()); len(got) != 0 {
		t.Fatalf("delivered without a token: %+v", got)
	}
	// 100 ms at 10/s gives one token: the next line carries the 16 drops.
	clock.add(100 * time.Millisecond)
	log.Error().Msg("after refill")
	got = drain(l.Live())
	if len(got) != 1 || got[0].Dropped != 16 || got[0].Message != "after refill" || got[0].Level != "error" {
		t.Fatalf("after refill: %+v", got)
	}
	// Tokens but nobody reading: the channel fills (5), the rest is counted.
	clock.add(10 * time.Second)
	w := l.EngineWriter()
	for i := 0; i < 8; i++ {
		fmt.Fprintf(w, "ERROR e%d\n", i)
	}
	fmt.Fprintf(w, "plain info line\n")
	got = drain(l.Live())
	if len(got) != 5 || got[0].Source != "engine" || got[0].Message != "ERROR e0" {
		t.Fatalf("full channel: %+v", got)
	}
	clock.add(time.Second)
	fmt.Fprintf(w, "WARNING last\n")
	got = drain(l.Live())
	if len(got) != 1 || got[0].Dropped != 3 || got[0].Level != "warn" {
		t.Fatalf("after a full channel: %+v", got)
	}
}

// A storm of 100k lines with nobody reading Live never holds a writer up,
// and every line is either delivered or counted as dropped.
func TestLogStorm(t *testing.T) {
	l := open(t, Options{LiveLevel: zerolog.WarnLevel})
	clock := withClock(l)
	const n = 100000
	var wg sync.WaitGroup
	worst := make([]time.Duration, 2)
	began := time.Now()
	wg.Add(2)
	go func() {
		defer wg.Done()
		w := l.EngineWriter()
		for i := 0; i < n/2; i++ {
			t0 := time.Now()
			fmt.Fprintf(w, "WARN storm line %d from the engine with some padding to look real\n", i)
			worst[0] = max(worst[0], time.Since(t0))
		}
	}()
	go func() {
		defer wg.Done()
		log := l.Logger()
		for i := 0; i < n/2; i++ {
			t0 := time.Now()
			log.Warn().Int("i", i).Msg("storm")
			worst[1] = max(worst[1], time.Since(t0))
		}
	}()
	wg.Wait()
	elapsed := time.Since(began)
	// Nothing waits for the unread channel; the bound leaves room for GC and
	// a loaded machine under the race detector.
	if w := max(worst[0], worst[1]); w > 500*time.Millisecond {
		t.Fatalf("a log call took %v during the storm", w)
	}
	delivered := drain(l.Live())
	clock.add(time.Second)
	after := l.Logger()
	after.Warn().Msg("after the storm")
	delivered = append(delivered, drain(l.Live())...)
	sum := 0
	for _, d := range delivered {
		sum += d.Dropped
	}
	if len(delivered) != DefaultLiveBurst+1 || len(delivered)+sum != n+1 {
		t.Fatalf("%d delivered, %d counted dropped, for %d lines", len(delivered), sum, n+1)
	}
	t.Logf("100k lines in %v, worst call %v engine / %v supervisor", elapsed, worst[0], worst[1])
}

func TestEngineWriterSplitting(t *testing.T) {
	l := open(t, Options{})
	w := l.EngineWriter()
	fmt.Fprint(w, "first part ")
	fmt.Fprint(w, "and the rest\nsecond\r\n\n0:00:01 WARN  qtdemux bad atom\nCRITICAL g_object_unref\nfoo ERROR bar\npartial")
	long := strings.Repeat("é", maxLine) // 2 bytes each: 128 KiB, with a cut inside a character nearby
	fmt.Fprint(w, "WARN "+long[:70000])
	fmt.Fprint(w, long[70000:]+"\n")
	w2 := l.EngineWriter()
	fmt.Fprint(w2, "other stream\n")

	got := l.LastEngineLines(100)
	head := []string{"first part and the rest", "second", "0:00:01 WARN  qtdemux bad atom", "CRITICAL g_object_unref", "foo ERROR bar"}
	if len(got) < len(head)+3 {
		t.Fatalf("engine lines: %q", got)
	}
	for i, h := range head {
		if got[i] != h {
			t.Fatalf("line %d = %q, want %q", i, got[i], h)
		}
	}
	// "partial" has no newline yet: the long line starts after it in the buffer.
	var joined strings.Builder
	pieces := got[len(head) : len(got)-1]
	for _, p := range pieces {
		if len(p) > maxLine || !utf8.ValidString(p) {
			t.Fatalf("piece of %d bytes, valid UTF-8 %v", len(p), utf8.ValidString(p))
		}
		joined.WriteString(p)
	}
	if joined.String() != "partialWARN "+long || len(pieces) != 3 {
		t.Fatalf("long line came back as %d pieces of %d bytes in all, want 3 with %d", len(pieces), joined.Len(), len("partialWARN ")+len(long))
	}
	if got[len(got)-1] != "other stream" {
		t.Fatalf("last line %q", got[len(got)-1])
	}
	levels := map[string]string{}
	for _, r := range l.Recent(100, zerolog.TraceLevel) {
		if strings.HasPrefix(r.Message, "partialWARN") || strings.HasPrefix(r.Message, "é") {
			levels["long"] += r.Level + " "
			continue
		}
		levels[r.Message] = r.Level
	}
	for msg, want := range map[string]string{
		"first part and the rest": "info", "second": "info", "0:00:01 WARN  qtdemux bad atom": "warn",
		"CRITICAL g_object_unref": "error", "foo ERROR bar": "error", "other stream": "info",
		"long": "warn warn warn ",
	} {
		if levels[msg] != want {
			t.Errorf("level of %q = %q, want %q", msg, levels[msg], want)
		}
	}
	// Pieces of one line share its level, even when a later piece has no keyword.
	fmt.Fprint(w, "ERROR "+strings.Repeat("x", maxLine+10)+"\n")
	rec := l.Recent(2, zerolog.TraceLevel)
	if rec[0].Level != "error" || rec[1].Level != "error" || rec[1].Message != strings.Repeat("x", 16) {
		t.Fatalf("continued line levels %q %q (%d bytes)", rec[0].Level, rec[1].Level, len(rec[1].Message))
	}

	// An unterminated line is written out by Close.
	fmt.Fprint(w2, "no newline at exit")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := records(t, l.Path())
	last := recs[len(recs)-1]
	if last["message"] != "no newline at exit" || last["source"] != "engine" || last["level"] != "info" {
		t.Fatalf("last record %v", last)
	}
	if _, err := w.Write([]byte("after close\n")); err != nil {
		t.Fatal(err)
	}
	if len(records(t, l.Path())) != len(recs) {
		t.Fatal("a write after Close reached the file")
	}
}

func TestRecent(t *testing.T) {
	l := open(t, Options{Recent: 5})
	log := l.Logger()
	log.Debug().Msg("d1")
	log.Info().Msg("i1")
	log.Warn().Err(fmt.Errorf("boom")).Msg("w1")
	log.Error().Int("slot", 2).Msg("e1")
	log.Info().Msg("i2")
	fmt.Fprint(l.EngineWriter(), "WARN engine w2\n")

	msgs := func(ls []Line) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.Message)
		}
		return strings.Join(s, "|")
	}
	for _, tc := range []struct {
		n    int
		min  zerolog.Level
		want string
	}{
		{100, zerolog.TraceLevel, "i1|w1 error=boom|e1 slot=2|i2|WARN engine w2"}, // d1 fell out of 5
		{100, zerolog.WarnLevel, "w1 error=boom|e1 slot=2|WARN engine w2"},
		{2, zerolog.WarnLevel, "e1 slot=2|WARN engine w2"},
		{1, zerolog.ErrorLevel, "e1 slot=2"},
		{0, zerolog.TraceLevel, ""},
	} {
		if got := msgs(l.Recent(tc.n, tc.min)); got != tc.want {
			t.Errorf("Recent(%d, %v) = %q, want %q", tc.n, tc.min, got, tc.want)
		}
	}
	r := l.Recent(1, zerolog.TraceLevel)[0]
	if r.Source != "engine" || r.Level != "warn" || time.Since(r.Time) > time.Minute {
		t.Fatalf("engine line %+v", r)
	}
	if got := l.LastEngineLines(3); len(got) != 1 || got[0] != "WARN engine w2" {
		t.Fatalf("LastEngineLines = %q", got)
	}
}
