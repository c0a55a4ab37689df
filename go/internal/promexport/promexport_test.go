package promexport

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLoop stands for the run loop: it answers from its own goroutine, as the real one
// would through a channel, and can be made to stop answering.
type fakeLoop struct {
	mu   sync.Mutex
	s    Snapshot
	hang bool
}

func (f *fakeLoop) Snapshot(ctx context.Context) (Snapshot, error) {
	f.mu.Lock()
	hang, s := f.hang, f.s
	f.mu.Unlock()
	if hang {
		<-ctx.Done()
		return Snapshot{}, ctx.Err()
	}
	return s, nil
}

func (f *fakeLoop) update(fn func(s *Snapshot)) {
	f.mu.Lock()
	fn(&f.s)
	f.mu.Unlock()
}

func serve(t *testing.T, src Source) string {
	t.Helper()
	return "http://" + serveWith(t, src, "")
}

// serveWith serves src with the web configuration file webConfig ("" for none) and
// returns the address.
func serveWith(t *testing.T, src Source, webConfig string) string {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() { done <- New("cam_a", src).Serve(ctx, ln, webConfig, log) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// promtool runs `promtool check metrics` on a scrape: exit 0 and no lint finding.
func promtool(t *testing.T, scrape string) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool missing: bash .ci/deps.sh installs Debian's prometheus")
	}
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(scrape)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("promtool check metrics: %v\n%s\nscrape:\n%s", err, out, scrape)
	}
}

func ptr[T any](v T) *T { return &v }

func TestScrape(t *testing.T) {
	loop := &fakeLoop{}
	loop.update(func(s *Snapshot) {
		s.Ready = true
		s.Slots = []Slot{{StreamID: 0, State: "running", Busy: true, CamerasQueued: 1, FilesQueued: 9, Frames: 60, FPS: 29.5},
			{StreamID: 1, State: "idle"}}
		s.Slots[0].SwitchGap = NewHistogram(GapBuckets)
		s.Slots[0].SwitchGap.Observe(0.004)
		s.Slots[0].FirstFrame = NewHistogram(FirstFrameBuckets)
		s.Slots[0].FirstFrame.Observe(0.02)
		s.Slots[0].Speed = NewHistogram(SpeedBuckets)
		s.Slots[0].Speed.Observe(3)
		s.Slots[0].OldestQueuedAge = 90 * time.Second
		s.Link = &Link{Connected: true, Reconnects: 2, Outbox: 3,
			Sent: map[string]uint64{"processing_started": 1}, Received: map[string]uint64{"start_analysis": 1}}
		s.Processes = []Process{{Name: "supervisor", CPUSeconds: 0.25, RSSBytes: 20 << 20}, {Name: "engine", CPUSeconds: 3, RSSBytes: 60 << 20}}
		s.GPUs = []GPU{{ID: 0, Utilization: ptr(0.42), MemoryUsedBytes: ptr(uint64(1 << 30)), MemoryTotalBytes: ptr(uint64(80 << 30))}}
	})
	url := serve(t, loop)

	code, first := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics %d: %s", code, first)
	}
	promtool(t, first)
	for _, want := range []string{
		`ds_analysis_up{app_id="cam_a"} 1`,
		`ds_analysis_ready{app_id="cam_a"} 1`,
		`ds_analysis_slot_state{app_id="cam_a",state="running",stream_id="0"} 1`,
		`ds_analysis_slot_state{app_id="cam_a",state="idle",stream_id="0"} 0`,
		`ds_analysis_slot_state{app_id="cam_a",state="idle",stream_id="1"} 1`,
		`ds_analysis_files_queued{app_id="cam_a",stream_id="0"} 9`,
		`ds_analysis_slot_busy{app_id="cam_a",stream_id="0"} 1`,
		`ds_analysis_slot_busy{app_id="cam_a",stream_id="1"} 0`,
		`ds_analysis_cameras_queued{app_id="cam_a",stream_id="0"} 1`,
		`ds_analysis_frames_total{app_id="cam_a",stream_id="0"} 60`,
		`ds_analysis_slot_frames_per_second{app_id="cam_a",stream_id="0"} 29.5`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="0",le="0.002"} 0`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="0",le="0.005"} 1`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="0",le="+Inf"} 1`,
		`ds_analysis_time_to_first_frame_seconds_bucket{app_id="cam_a",stream_id="0",le="0.01"} 0`,
		`ds_analysis_time_to_first_frame_seconds_bucket{app_id="cam_a",stream_id="0",le="0.025"} 1`,
		`ds_analysis_time_to_first_frame_seconds_sum{app_id="cam_a",stream_id="0"} 0.02`,
		`ds_analysis_file_speed_ratio_bucket{app_id="cam_a",stream_id="0",le="2"} 0`,
		`ds_analysis_file_speed_ratio_bucket{app_id="cam_a",stream_id="0",le="4"} 1`,
		`ds_analysis_oldest_queued_file_age_seconds{app_id="cam_a",stream_id="0"} 90`,
		`ds_analysis_oldest_queued_file_age_seconds{app_id="cam_a",stream_id="1"} 0`,
		`ds_analysis_file_errors_total{app_id="cam_a",class="input",stream_id="0"} 0`,
		`ds_analysis_file_errors_total{app_id="cam_a",class="output",stream_id="1"} 0`,
		// a slot without observations still reports every bucket
		`ds_analysis_file_speed_ratio_bucket{app_id="cam_a",stream_id="1",le="1024"} 0`,
		`ds_analysis_time_to_first_frame_seconds_bucket{app_id="cam_a",stream_id="1",le="20"} 0`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="1",le="2"} 0`,
		`ds_analysis_link_connected{app_id="cam_a"} 1`,
		`ds_analysis_link_reconnects_total{app_id="cam_a"} 2`,
		`ds_analysis_outbox_messages{app_id="cam_a"} 3`,
		`ds_analysis_messages_total{app_id="cam_a",direction="received",type="start_analysis"} 1`,
		`ds_analysis_process_resident_memory_bytes{app_id="cam_a",process="engine"} 6.291456e+07`,
		`ds_analysis_process_cpu_seconds_total{app_id="cam_a",process="supervisor"} 0.25`,
		`ds_analysis_gpu_utilization_ratio{app_id="cam_a",gpu="0"} 0.42`,
		`ds_analysis_gpu_memory_total_bytes{app_id="cam_a",gpu="0"} 8.589934592e+10`,
	} {
		if !strings.Contains(first, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}

	// Files play: the counters move, a second gap lands in a higher bucket.
	loop.update(func(s *Snapshot) {
		s.Slots[0].FilesDone, s.Slots[0].Frames, s.Slots[0].FilesFailed, s.Slots[0].Stalls = 1, 120, 1, 1
		s.Slots[0].SwitchGap.Observe(0.03)
		s.Slots[0].FileErrors = map[string]uint64{ErrStalled: 1}
		s.Link.Sent["file_done"] = 1
	})
	_, second := get(t, url+"/metrics")
	promtool(t, second)
	for _, want := range []string{
		`ds_analysis_files_done_total{app_id="cam_a",stream_id="0"} 1`,
		`ds_analysis_files_failed_total{app_id="cam_a",stream_id="0"} 1`,
		`ds_analysis_stalls_total{app_id="cam_a",stream_id="0"} 1`,
		`ds_analysis_file_errors_total{app_id="cam_a",class="stalled",stream_id="0"} 1`,
		`ds_analysis_file_errors_total{app_id="cam_a",class="input",stream_id="0"} 0`,
		`ds_analysis_frames_total{app_id="cam_a",stream_id="0"} 120`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="0",le="0.025"} 1`,
		`ds_analysis_switch_gap_seconds_bucket{app_id="cam_a",stream_id="0",le="0.05"} 2`,
		`ds_analysis_switch_gap_seconds_count{app_id="cam_a",stream_id="0"} 2`,
		`ds_analysis_messages_total{app_id="cam_a",direction="sent",type="file_done"} 1`,
	} {
		if !strings.Contains(second, want+"\n") {
			t.Errorf("second scrape lacks %s", want)
		}
	}
}

// TestNoGPU: without NVML no GPU series at all, and no error.
func TestNoGPU(t *testing.T) {
	loop := &fakeLoop{}
	loop.update(func(s *Snapshot) {
		s.Slots = []Slot{{StreamID: 0, State: "idle"}}
		s.GPUs = []GPU{{ID: 0}} // known device, nothing readable
	})
	code, body := get(t, serve(t, loop)+"/metrics")
	if code != 200 || strings.Contains(body, "ds_analysis_gpu_") {
		t.Fatalf("%d:\n%s", code, body)
	}
	promtool(t, body)
}

func TestProbes(t *testing.T) {
	loop := &fakeLoop{}
	url := serve(t, loop)
	if code, body := get(t, url+"/healthz"); code != 200 || body != "ok\n" {
		t.Errorf("/healthz %d %q", code, body)
	}
	if code, body := get(t, url+"/readyz"); code != 503 || !strings.Contains(body, "not ready") {
		t.Errorf("/readyz before ready: %d %q", code, body)
	}
	loop.update(func(s *Snapshot) { s.Ready = true })
	if code, _ := get(t, url+"/readyz"); code != 200 {
		t.Errorf("/readyz when ready: %d", code)
	}

	// A loop that does not answer: both probes fail after HealthTimeout, the scrape
	// says ds_analysis_up 0.
	loop.update(func(*Snapshot) {})
	loop.mu.Lock()
	loop.hang = true
	loop.mu.Unlock()
	t0 := time.Now()
	code, body := get(t, url+"/healthz")
	if took := time.Since(t0); code != 503 || took < HealthTimeout || took > HealthTimeout+2*time.Second {
		t.Errorf("/healthz on a hung loop: %d %q after %v", code, body, took)
	}
	if code, _ := get(t, url+"/readyz"); code != 503 {
		t.Errorf("/readyz on a hung loop: %d", code)
	}
	if code, body := get(t, url+"/metrics"); code != 200 || !strings.Contains(body, `ds_analysis_up{app_id="cam_a"} 0`) {
		t.Errorf("/metrics on a hung loop: %d\n%s", code, body)
	}
}

func TestListenRefusesTakenPort(t *testing.T) {
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := Listen(ln.Addr().String()); err == nil || !strings.Contains(err.Error(), "metrics:") {
		t.Errorf("second Listen on %s: %v", ln.Addr(), err)
	}
}

func TestHistogramBuckets(t *testing.T) {
	h := NewHistogram(GapBuckets)
	for _, v := range []float64{0.001, 0.002, 0.0021, 2, 5} {
		h.Observe(v)
	}
	snap := h.Clone()
	h.Observe(0.001) // not in the clone
	c := snap.cumulative(nil)
	if c[0.002] != 2 || c[0.005] != 3 || c[2] != 4 || snap.Count() != 5 || h.Count() != 6 {
		t.Errorf("cumulative %v count %d", c, snap.Count())
	}
	var zero Histogram
	if c := zero.cumulative(SpeedBuckets); len(c) != len(SpeedBuckets) || c[1024] != 0 {
		t.Errorf("zero histogram: %v", c)
	}
	for name, b := range map[string][]float64{"gap": GapBuckets, "first frame": FirstFrameBuckets, "speed": SpeedBuckets} {
		if !slices.IsSorted(b) || len(slices.Compact(slices.Clone(b))) != len(b) {
			t.Errorf("%s buckets not strictly ascending: %v", name, b)
		}
	}
}
