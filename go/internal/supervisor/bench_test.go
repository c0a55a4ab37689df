package supervisor

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/link/linktest"
)

// BenchmarkInstance drives the real ds-supervisor binary (DS_SUPERVISOR) with the real
// ds-gst-engine (DS_GST_ENGINE) from an in-process WebSocket server and prints the
// figures of the README's benchmark table. Run with -benchtime 1x.
func BenchmarkInstance(b *testing.B) {
	sup, eng := os.Getenv("DS_SUPERVISOR"), os.Getenv("DS_GST_ENGINE")
	if sup == "" || eng == "" {
		b.Skip("DS_SUPERVISOR and DS_GST_ENGINE must be set (make bench sets them)")
	}
	dir := b.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "[source0]\nenable=1\ntype=3\nnum-sources=5\nuri=file:///dev/null\ngpu-id=0\n")
	cfgPath := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	srv := linktest.New(b, linktest.Options{})
	cmd := exec.Command(sup, "-c", cfgPath)
	cmd.Env = append(os.Environ(), "APP_ID=bench_inst", "DS_WS_URL="+srv.URL(), "DS_ENGINE="+eng,
		"DS_LOG_ROOT="+filepath.Join(dir, "logs"), "DS_INSTANCE_ROOT="+filepath.Join(dir, "ds"))
	cmd.Stderr = os.Stderr
	// A benchmark killed from outside (a closed pipe, ^C) must not leave the instance
	// running and reconnecting forever.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
	}()
	srv.Expect("app_ready", nil)

	// 1. Request → reply latency at 1,000 requests/s.
	const paced = 3000
	rtt := pacedRTT(b, srv, paced, time.Millisecond, func(i int) string {
		return fmt.Sprintf(`{"type":"query_analysis_status","request_id":"p%d","stream_id":%d}`, i, i%5)
	}, "analysis_status")

	// 2. Load: 5 slots × 200 cameras, 10,000 queued files in all.
	for s := 0; s < 5; s++ {
		for c := 0; c < 200; c++ {
			srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"s%d_%d","stream_id":%d,"camera_id":%d,"camera_type":"fileset","camera_path":"/data/c%d","camera_name":"c%d","output_dir":%q}`,
				s, c, s, s*1000+c, c, c, filepath.Join(dir, "out")))
		}
	}
	for i := 0; i < 1000; i++ {
		srv.Expect("analysis_started", nil)
	}
	for s := 0; s < 5; s++ {
		for c := 1; c < 200; c++ { // camera 0 of each slot runs and waits for files
			var files strings.Builder
			n := 10
			if c == 199 {
				n = 20 // 199 cameras × 10 + 10 more = 2,000 per slot, 10,000 in all
			}
			for f := 0; f < n; f++ {
				if f > 0 {
					files.WriteByte(',')
				}
				id := (s*1000+c)*100 + f
				fmt.Fprintf(&files, `{"file_type":"file","file_id":%d,"file_path":"/data/c%d/f%d.mp4","file_name":"f%d.mp4","output_path":"/tmp/o/%d.txt"}`, id, c, f, f, id)
			}
			srv.Send(fmt.Sprintf(`{"type":"push_file","request_id":"p%d_%d","stream_id":%d,"camera_id":%d,"files":[%s]}`, s, c, s, s*1000+c, files.String()))
		}
	}
	// The pushes have no reply: wait until the instance has taken them all (requests
	// are served in order), so the first status query does not time the load.
	srv.Send(`{"type":"query_logs","request_id":"loaded","lines":1}`)
	srv.Expect("logs", nil)
	rss := procStatusKB(b, cmd.Process.Pid, "VmRSS")
	statusRTT := pacedRTT(b, srv, 200, 0, func(i int) string {
		return fmt.Sprintf(`{"type":"query_analysis_status","request_id":"w%d"}`, i)
	}, "analysis_status")

	rssAfter := procStatusKB(b, cmd.Process.Pid, "VmRSS")

	// 3. One push_file of 10,000 files; it has no reply, so a one-line query_logs sent
	// right after it times it (the queries are served in order).
	var push []time.Duration
	for rep := 0; rep < 3; rep++ {
		cam := 900000 + rep
		srv.Send(fmt.Sprintf(`{"type":"start_analysis","request_id":"big%d","stream_id":0,"camera_id":%d,"camera_type":"fileset","camera_path":"/d","camera_name":"big","output_dir":%q}`, rep, cam, filepath.Join(dir, "out")))
		srv.Expect("analysis_started", nil)
		var files strings.Builder
		for f := 0; f < 10000; f++ {
			if f > 0 {
				files.WriteByte(',')
			}
			fmt.Fprintf(&files, `{"file_type":"file","file_id":%d,"file_path":"/data/big/f%d.mp4","file_name":"f%d.mp4","output_path":"/tmp/o/b%d.txt"}`, cam*100000+f, f, f, f)
		}
		msg := fmt.Sprintf(`{"type":"push_file","request_id":"bigp%d","stream_id":0,"camera_id":%d,"files_count":10000,"files":[%s]}`, rep, cam, files.String())
		t0 := time.Now()
		srv.Send(msg)
		srv.Send(fmt.Sprintf(`{"type":"query_logs","request_id":"bl%d","lines":1}`, rep))
		lg := srv.Expect("logs", nil)
		push = append(push, lg["_arrived"].(time.Time).Sub(t0))
		srv.Send(fmt.Sprintf(`{"type":"query_analysis_status","request_id":"bq%d","stream_id":0,"camera_id":%d}`, rep, cam))
		m := srv.Expect("analysis_status", nil)
		if raw, ok := m["_raw"].([]byte); ok {
			if err := json.Unmarshal(raw, &m); err != nil {
				b.Fatal(err)
			}
		}
		cam2, _ := m["camera"].(map[string]any)
		files2, _ := cam2["files"].(map[string]any)
		if files2["queued_count"] != float64(10000) {
			b.Fatalf("push not applied: %v", files2["queued_count"])
		}
	}
	rssPush := procStatusKB(b, cmd.Process.Pid, "VmRSS")

	// 4. Idle CPU of the supervisor with that state, over 10 s after 3 s of settling.
	time.Sleep(3 * time.Second) // measuring idle time is the point: nothing to await
	c0 := procCPUTicks(b, cmd.Process.Pid)
	t0 := time.Now()
	time.Sleep(10 * time.Second)
	idle := float64(procCPUTicks(b, cmd.Process.Pid)-c0) / 100 / time.Since(t0).Seconds() * 100

	srv.Send(`{"type":"terminate_app","request_id":"bye"}`)
	srv.Expect("app_terminated", nil)

	fmt.Printf("\n| supervisor benchmark | median | p99 | max | target |\n|---|---|---|---|---|\n")
	fmt.Printf("| request→reply at 1,000 msg/s (query_analysis_status of one stream, slots idle; %d requests) | %s | %s | %s | p99 ≤ 2 ms |\n", paced, ms(pct(rtt, 50)), ms(pct(rtt, 99)), ms(pct(rtt, 100)))
	fmt.Printf("| query_analysis_status, 5 slots × 200 cameras × 10,000 queued files (200 queries) | %s | %s | %s | p99 ≤ 20 ms |\n", ms(pct(statusRTT, 50)), ms(pct(statusRTT, 99)), ms(pct(statusRTT, 100)))
	fmt.Printf("| push_file of 10,000 files, timed by a query sent right after it (3 pushes) | %s | — | %s | ≤ 50 ms |\n", ms(pct(push, 50)), ms(pct(push, 100)))
	fmt.Printf("| supervisor RSS with 5 × 200 cameras × 10,000 files: loaded / after 200 full status replies / after 3 more 10,000-file pushes | %.1f / %.1f / %.1f MB | | | ≤ 30 MB |\n",
		float64(rss)/1024, float64(rssAfter)/1024, float64(rssPush)/1024)
	fmt.Printf("| supervisor idle CPU with that state, 10 s | %.2f %% of a core | | | ≤ 0.5 %% |\n\n", idle)
	b.ReportMetric(float64(pct(rtt, 99).Microseconds())/1000, "p99-rtt-ms")
	b.ReportMetric(float64(pct(statusRTT, 99).Microseconds())/1000, "p99-status-ms")
	b.ReportMetric(float64(rss)/1024, "rss-MB")
	b.ReportMetric(idle, "idle-cpu-%")
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(s) {
		i = len(s) - 1
	}
	return s[i]
}

func procStatusKB(b *testing.B, pid int, key string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, key+":") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	b.Fatalf("%s not in /proc/%d/status", key, pid)
	return 0
}

// procCPUTicks returns utime+stime of pid in clock ticks (USER_HZ = 100 on Linux).
func procCPUTicks(b *testing.B, pid int) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ut + st
}

// pacedRTT sends n requests and returns each one's time to its reply of type typ: one
// every gap from a separate goroutine, or one after another when gap is 0. Request ids
// must be one letter followed by the index.
func pacedRTT(b *testing.B, s *linktest.Server, n int, gap time.Duration, mk func(int) string, typ string) []time.Duration {
	out := make([]time.Duration, 0, n)
	if gap == 0 {
		for i := 0; i < n; i++ {
			t0 := time.Now()
			s.Send(mk(i))
			m := s.Expect(typ, nil)
			out = append(out, m["_arrived"].(time.Time).Sub(t0))
		}
		return out
	}
	var mu sync.Mutex
	sent := make([]time.Time, n)
	go func() {
		tick := time.NewTicker(gap)
		defer tick.Stop()
		for i := 0; i < n; i++ {
			<-tick.C
			mu.Lock()
			sent[i] = time.Now()
			mu.Unlock()
			s.Send(mk(i))
		}
	}()
	for len(out) < n {
		m := s.Expect(typ, nil)
		rid, _ := m["request_id"].(string)
		i, err := strconv.Atoi(rid[1:])
		if err != nil || i < 0 || i >= n {
			b.Fatalf("unexpected request_id %q", rid)
		}
		mu.Lock()
		out = append(out, m["_arrived"].(time.Time).Sub(sent[i]))
		mu.Unlock()
	}
	return out
}
