package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
	"github.com/cityeyelab/ds-analysis/go/internal/logs"
	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
)

// makeClip writes a small H.264/MP4 clip with gst-launch-1.0.
func makeClip(t testing.TB, path string, frames int) {
	t.Helper()
	cmd := exec.Command("gst-launch-1.0", "-q", "videotestsrc", fmt.Sprintf("num-buffers=%d", frames),
		"!", "video/x-raw,format=I420,width=160,height=90,framerate=30/1",
		"!", "x264enc", "speed-preset=ultrafast", "key-int-max=30", "!", "h264parse", "!", "mp4mux",
		"!", "filesink", "location="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gst-launch: %v: %s", err, out)
	}
}

type harness struct {
	srv    *linktest.Server
	dir    string
	code   chan int
	cancel context.CancelFunc
	eng    *engine.Engine // the first engine

	mu      sync.Mutex
	engines []*engine.Engine // every engine started, the first included
}

// exit waits up to within for Run's status, failing with what it waited for.
func (h *harness) exit(t *testing.T, within time.Duration, after string) int {
	t.Helper()
	select {
	case code := <-h.code:
		h.code <- code // for the cleanup
		return code
	case <-time.After(within):
		t.Fatalf("Run did not return after %s", after)
		return -1
	}
}

// current returns the engine started last.
func (h *harness) current() *engine.Engine {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.engines[len(h.engines)-1]
}

func startInstance(t *testing.T, slots int) *harness {
	t.Helper()
	return startInstanceWith(t, slots, 0)
}

// startInstanceWith runs the real gst engine under Run with a restart budget.
func startInstanceWith(t *testing.T, slots, restarts int) *harness {
	t.Helper()
	bin := os.Getenv("DS_GST_ENGINE")
	if bin == "" {
		t.Skip("DS_GST_ENGINE is not set (make test-go sets it)")
	}
	dir := t.TempDir()
	var cfg strings.Builder
	for i := 0; i < slots; i++ {
		fmt.Fprintf(&cfg, "[source%d]\nenable=1\ntype=3\nuri=file:///dev/null\ngpu-id=0\n\n", i)
	}
	cfgPath := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	idir, err := instance.Open(filepath.Join(dir, "ds"), "test_inst")
	if err != nil {
		t.Fatal(err)
	}
	lg, err := logs.Open(logs.Options{Root: filepath.Join(dir, "logs"), AppID: "test_inst", PID: os.Getpid(), Start: time.Now(), LiveLevel: zerolog.WarnLevel})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.Start(context.Background(), engine.Config{
		Binary: bin, ConfigPath: cfgPath, SocketPath: idir.SocketPath(), Output: lg.EngineWriter(),
		StartTimeout: 20 * time.Second, Log: lg.Logger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := linktest.New(t, linktest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{srv: srv, dir: dir, code: make(chan int, 1), cancel: cancel, eng: eng, engines: []*engine.Engine{eng}}
	restart := func(ctx context.Context) (Engine, error) {
		e, err := engine.Start(ctx, eng.Config())
		if err != nil {
			return nil, err
		}
		h.mu.Lock()
		h.engines = append(h.engines, e)
		h.mu.Unlock()
		return e, nil
	}
	sampler := metrics.NewSampler(eng.Hello().GPUIDs)
	go func() {
		h.code <- Run(ctx, Options{
			AppID: "test_inst", ConfigPath: cfgPath, Version: "test", Start: time.Now(), StopTimeout: 5 * time.Second,
			Restarts: restarts, BackoffMin: 500 * time.Millisecond, BackoffMax: 10 * time.Second,
			Link: link.Config{URL: srv.URL(), AckTimeout: 5 * time.Second, PingInterval: time.Second,
				PingTimeout: 2 * time.Second, BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, Log: lg.Logger()},
		}, Deps{Engine: eng, Restart: restart, Hello: eng.Hello(), Logs: lg, Log: lg.Logger(), Metrics: sampler, Dir: idir})
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-h.code:
		case <-time.After(15 * time.Second):
			t.Error("Run did not return after cancel")
		}
		h.mu.Lock()
		for _, e := range h.engines {
			_ = e.Shutdown(context.Background())
		}
		h.mu.Unlock()
		sampler.Close()
		lg.Close()
		idir.Close()
	})
	return h
}

func TestRunAnalysisFlow(t *testing.T) {
	h := startInstance(t, 2)
	ready := h.srv.Expect("app_ready", nil)
	if ready["streams_count"] != float64(2) || ready["instance_id"] != "test_inst" || ready["seq"] == nil {
		t.Fatalf("app_ready %v", ready)
	}
	clips := filepath.Join(h.dir, "clips")
	if err := os.MkdirAll(clips, 0o755); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(clips, "a.mp4"), filepath.Join(clips, "b.mp4")
	makeClip(t, a, 15)
	makeClip(t, b, 20)
	out := filepath.Join(h.dir, "out", "cam7")

	h.srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"r1","stream_id":1,"camera_id":7,"camera_type":"fileset",
		"camera_path":%q,"camera_name":"cam7","output_dir":%q,
		"init_file":{"file_type":"file","file_id":1,"file_path":%q,"file_name":"a.mp4","output_path":%q}}`,
		clips, out, a, filepath.Join(out, "1.txt")))
	started := h.srv.Expect("analysis_started", nil)
	if started["status"] != "ok" || started["request_id"] != "r1" || started["stream_id"] != float64(1) || started["camera_id"] != float64(7) {
		t.Fatalf("analysis_started %v", started)
	}
	if st, err := os.Stat(out); err != nil || !st.IsDir() {
		t.Fatalf("output_dir not created: %v", err)
	}
	h.srv.Send(fmt.Sprintf(`{"type":"push_file","request_id":"r2","stream_id":1,"camera_id":7,"files_count":2,"files":[
		{"file_type":"file","file_id":2,"file_path":%q,"file_name":"b.mp4","output_path":%q},
		{"file_type":"file","file_id":3,"file_path":%q,"file_name":"missing.mp4","output_path":%q},
		{"file_type":"eos"}]}`, b, filepath.Join(out, "2.txt"), filepath.Join(clips, "missing.mp4"), filepath.Join(out, "3.txt")))

	var seen []map[string]any
	done := h.srv.Expect("analysis_complete", &seen)
	if done["processed_count"] != float64(2) || done["failed_count"] != float64(1) || done["request_id"] != "r2" || done["status"] != "done" {
		t.Fatalf("analysis_complete %v", done)
	}
	var kinds []string
	lastSeq := 0.0
	for _, m := range append(seen, done) {
		if m["type"] == "log" {
			continue
		}
		kinds = append(kinds, fmt.Sprintf("%v:%v", m["type"], m["file_id"]))
		if s, _ := m["seq"].(float64); s <= lastSeq {
			t.Errorf("seq not increasing: %v after %v", s, lastSeq)
		} else {
			lastSeq = s
		}
	}
	want := "processing_started:1 file_done:1 processing_started:2 file_done:2 processing_started:3 file_error:3 analysis_complete:<nil>"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events\n got %s\nwant %s", got, want)
	}
	// Frame indexes continue across the two files of the camera.
	f1, _ := os.ReadFile(filepath.Join(out, "1.txt"))
	f2, _ := os.ReadFile(filepath.Join(out, "2.txt"))
	l1 := strings.Split(strings.TrimSpace(string(f1)), "\n")
	l2 := strings.Split(strings.TrimSpace(string(f2)), "\n")
	if len(l1) != 15 || len(l2) != 20 || !strings.HasPrefix(l2[0], "15 0 ") {
		t.Fatalf("outputs: %d and %d lines, second starts %q", len(l1), len(l2), l2[0])
	}

	h.srv.Send(`{"type":"query_analysis_status","request_id":"q1"}`)
	st := h.srv.Expect("analysis_status", nil)
	streams, _ := st["streams"].([]any)
	if st["request_id"] != "q1" || len(streams) != 2 {
		t.Fatalf("status %v", st)
	}
	h.srv.Send(`{"type":"query_metrics","request_id":"m1"}`)
	m := h.srv.Expect("metrics", nil)
	if m["status"] != "ok" || m["ram_mb"].(float64) <= 0 || m["gpu_percent"] != nil {
		t.Fatalf("metrics %v", m)
	}
	h.srv.Send(`{"type":"bogus","request_id":"x"}`)
	if e := h.srv.Expect("error", nil); e["error_code"] != "UNKNOWN_TYPE" || e["request_id"] != "x" {
		t.Fatalf("error %v", e)
	}
	h.srv.Send(`{"type":"terminate_app","request_id":"t1"}`)
	term := h.srv.Expect("app_terminated", nil)
	if term["request_id"] != "t1" || term["status"] != "ok" {
		t.Fatalf("app_terminated %v", term)
	}
	if code := h.exit(t, 10*time.Second, "terminate_app"); code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	select {
	case <-h.eng.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("engine still running after terminate_app")
	}
	var state map[string]any
	b2, err := os.ReadFile(filepath.Join(h.dir, "ds", "test_inst", "state.json"))
	if err != nil || json.Unmarshal(b2, &state) != nil || state["app_id"] != "test_inst" {
		t.Fatalf("state.json: %v %s", err, b2)
	}
}

func TestRunEngineCrash(t *testing.T) {
	h := startInstance(t, 1)
	h.srv.Expect("app_ready", nil)
	// Wait until the handshake is served so the report goes out on a live link.
	h.srv.Send(`{"type":"query_metrics","request_id":"m"}`)
	h.srv.Expect("metrics", nil)
	if err := exec.Command("kill", "-9", fmt.Sprint(h.eng.PID())).Run(); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	crash := h.srv.Expect("engine_crashed", nil)
	if crash["signal"] == nil || crash["instance_id"] != "test_inst" {
		t.Fatalf("engine_crashed %v", crash)
	}
	if d := time.Since(t0); d > time.Second {
		t.Errorf("crash report after %v", d)
	}
	if code := h.exit(t, 10*time.Second, "the engine died"); code != ExitCrashed {
		t.Fatalf("exit %d, want %d", code, ExitCrashed)
	}
}
