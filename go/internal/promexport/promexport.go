// Package promexport serves an instance's figures to Prometheus (/metrics, text format,
// names prefixed ds_analysis_, base units, labels app_id, stream_id, gpu) with liveness
// (/healthz) and readiness (/readyz) probes. It owns no state: each scrape or probe asks
// a Source for a Snapshot, so the figures are the run loop's own and a loop that does
// not answer within HealthTimeout shows as unhealthy rather than as stale numbers.
package promexport

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

// HealthTimeout is how long a probe or a scrape waits for the Source.
const HealthTimeout = time.Second

// Source gives the current figures; it must return once ctx is done.
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Snapshot is the instance at one moment. Counters are totals since the process
// started. Nil or empty parts are left out of the scrape (a GPU without NVML, an engine
// not running), never reported as zero.
type Snapshot struct {
	// Ready: the engine is ready and FastAPI confirmed the handshake.
	Ready bool
	Slots []Slot
	Link  *Link
	// EngineRestarts counts engine restarts in place.
	EngineRestarts uint64
	Processes      []Process
	GPUs           []GPU
}

// Slot is one stream slot.
type Slot struct {
	StreamID int
	State    string // idle, running, … (one series per state, 1 for the current one)
	// Busy: a file of the slot is in the engine (or its path is being checked). A
	// running fileset camera waiting for push_file is not busy.
	Busy          bool
	CamerasQueued int
	FilesQueued   int
	// OldestQueuedAge is how long the oldest file waiting on the slot has waited since
	// its start_analysis or push_file arrived; 0 when none waits.
	OldestQueuedAge time.Duration
	FilesDone       uint64
	FilesFailed     uint64
	// FileErrors counts the failed files by class (one of ErrorClasses); a class
	// without files is reported as 0.
	FileErrors map[string]uint64
	Stalls     uint64 // files whose frames stopped for the stall timeout
	Frames     uint64
	FPS        float64
	// SwitchGap is the time from a file's last frame to the next file's first on
	// this slot (GapBuckets).
	SwitchGap Histogram
	// FirstFrame is the time from a file's play to its first frame (FirstFrameBuckets).
	FirstFrame Histogram
	// Speed is a file's duration over the wall time from its play to its end, in
	// times real time (SpeedBuckets).
	Speed Histogram
}

// Link is the WebSocket connection to FastAPI.
type Link struct {
	Connected  bool
	Reconnects uint64
	Outbox     int               // messages waiting to be sent or confirmed
	Sent       map[string]uint64 // app → server messages by type
	Received   map[string]uint64 // server → app messages by type
}

// Process is the supervisor or the engine.
type Process struct {
	Name       string // "supervisor" or "engine"
	CPUSeconds float64
	RSSBytes   uint64
}

// GPU is one device as NVML reports it; nil fields are unknown.
type GPU struct {
	ID               int
	Utilization      *float64 // 0..1
	MemoryUsedBytes  *uint64
	MemoryTotalBytes *uint64
}

// SlotStates are the states each slot reports a series for.
var SlotStates = []string{"idle", "running", "error"}

// File error classes: the class label of ds_analysis_file_errors_total, why a file
// ended with file_error. The supervisor decides the class where it makes or receives
// the file_error; README.md ("Monitoring") explains them.
const (
	// ErrInput: the file or its path — missing, empty, not a video, undecodable, not
	// a regular file, a path that did not answer, a play the engine refused.
	ErrInput = "input"
	// ErrStalled: its frames stopped — the frame-progress watchdog, the engines' own
	// start and stall watchdogs, frames stuck in the pipeline after the file's end.
	ErrStalled = "stalled"
	// ErrEngine: the engine was lost with the file in flight — it crashed, stopped
	// answering, was restarted for a stuck pipeline, or the previous process died.
	ErrEngine = "engine"
	// ErrLive: a live source given up — refused by its server, or its reconnect
	// attempts spent.
	ErrLive = "live"
	// ErrOutput: its per-file output could not be opened or written.
	ErrOutput = "output"
)

// ErrorClasses are the classes each slot reports a ds_analysis_file_errors_total for.
var ErrorClasses = []string{ErrInput, ErrStalled, ErrEngine, ErrLive, ErrOutput}

// Histogram upper bounds, in the unit of each series. Every slot reports every bucket.
var (
	// GapBuckets (seconds): the engine's switch gap is a few milliseconds, the
	// target 10 ms median and 25 ms p99, 2 s is a failure.
	GapBuckets = []float64{0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2}
	// FirstFrameBuckets (seconds): ds-gst-engine starts a local file in a few
	// milliseconds, a DeepStream decoder in tens to hundreds; a live source adds its
	// connection; the engines fail a file without a first frame after 5 s (gst) or
	// 10 s (DeepStream), the stall watchdog after 20 s.
	FirstFrameBuckets = []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20}
	// SpeedBuckets (times real time, doubling): below 1 a slot cannot keep up with
	// cameras recording in real time; a GPU slot runs at a few to a few tens, the
	// CPU engine on small test clips at hundreds.
	SpeedBuckets = []float64{0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
)

// Histogram accumulates observations under upper bounds (buckets are "le"). Make
// one with NewHistogram; it is not safe for concurrent use (the loop owns it and puts
// a Clone into each snapshot). A zero Histogram reports its series' buckets, all 0.
type Histogram struct {
	bounds []float64 // shared, never written
	counts []uint64  // one per bound, then +Inf
	count  uint64
	sum    float64
}

// NewHistogram returns an empty histogram with upper bounds bounds (ascending, one
// of the bucket variables above).
func NewHistogram(bounds []float64) Histogram {
	return Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
}

// Observe adds one observation.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // first bound ≥ v
	h.counts[i]++
	h.count++
	h.sum += v
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.count }

// Sum is the sum of the observations.
func (h *Histogram) Sum() float64 { return h.sum }

// Clone returns a copy that shares nothing written later.
func (h Histogram) Clone() Histogram {
	h.counts = slices.Clone(h.counts)
	return h
}

// cumulative returns the bucket counts as client_golang wants them; a zero
// histogram reports bounds, all 0.
func (h *Histogram) cumulative(bounds []float64) map[float64]uint64 {
	if h.bounds != nil {
		bounds = h.bounds
	}
	out := make(map[float64]uint64, len(bounds))
	var c uint64
	for i, b := range bounds {
		if h.counts != nil {
			c += h.counts[i]
		}
		out[b] = c
	}
	return out
}

// Exporter serves one instance's /metrics, /healthz and /readyz.
type Exporter struct {
	appID string
	src   Source
	reg   *prometheus.Registry
}

// New returns the exporter of instance appID reading src.
func New(appID string, src Source) *Exporter {
	e := &Exporter{appID: appID, src: src, reg: prometheus.NewRegistry()}
	e.reg.MustRegister(&collector{e: e})
	return e
}

// Handler serves /metrics, /healthz and /readyz.
func (e *Exporter) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if _, err := e.snapshot(r.Context()); err != nil {
			http.Error(w, "run loop: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		s, err := e.snapshot(r.Context())
		switch {
		case err != nil:
			http.Error(w, "run loop: "+err.Error(), http.StatusServiceUnavailable)
		case !s.Ready:
			http.Error(w, "not ready: engine starting or handshake not confirmed", http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	return mux
}

// Listen binds addr (host:port) now, so that a bad or taken address is a start-up error.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return ln, nil
}

// CheckWebConfig reads a web configuration file of Prometheus's exporter-toolkit
// (tls_server_config, http_server_config, basic_auth_users) with the toolkit itself,
// and the certificate files it names, so that a bad one is an error at start.
func CheckWebConfig(path string) error {
	return web.Validate(path)
}

// Serve serves the exporter on ln until ctx is done. A non-empty webConfig is an
// exporter-toolkit web configuration file, served by the toolkit as every Prometheus
// exporter serves its --web.config.file: TLS with an optional client CA, basic-auth
// users with bcrypt hashes; the toolkit reads it again for each TLS handshake and
// request, so a certificate or a password changed there needs no restart. The
// toolkit's own messages go to log.
func (e *Exporter) Serve(ctx context.Context, ln net.Listener, webConfig string, log *slog.Logger) error {
	srv := &http.Server{Handler: e.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	defer stop()
	flags := &web.FlagConfig{
		WebListenAddresses: &[]string{ln.Addr().String()},
		WebSystemdSocket:   new(bool),
		WebConfigFile:      &webConfig,
	}
	if err := web.Serve(ln, srv, flags, log); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

func (e *Exporter) snapshot(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, HealthTimeout)
	defer cancel()
	type result struct {
		s   Snapshot
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := e.src.Snapshot(ctx)
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-ctx.Done():
		return Snapshot{}, fmt.Errorf("no answer within %v", HealthTimeout)
	}
}

var (
	slotLabels = []string{"app_id", "stream_id"}
	descs      = struct {
		up, ready, slotState, busy, camerasQueued, filesQueued, oldestQueued, filesDone, filesFailed, fileErrors, stalls,
		frames, fps, gap, firstFrame, speed, linkConnected, reconnects, outbox, messages, restarts, cpu, rss, gpuUtil, gpuUsed, gpuTotal *prometheus.Desc
	}{
		up:            prometheus.NewDesc("ds_analysis_up", "1 when the run loop answered this scrape within 1 s.", []string{"app_id"}, nil),
		ready:         prometheus.NewDesc("ds_analysis_ready", "1 when the engine is ready and FastAPI confirmed the handshake.", []string{"app_id"}, nil),
		slotState:     prometheus.NewDesc("ds_analysis_slot_state", "1 for the slot's current state, 0 for the others.", []string{"app_id", "stream_id", "state"}, nil),
		busy:          prometheus.NewDesc("ds_analysis_slot_busy", "1 while a file of the slot is in the engine, 0 otherwise (also while its camera waits for push_file).", slotLabels, nil),
		camerasQueued: prometheus.NewDesc("ds_analysis_cameras_queued", "Cameras waiting for the slot.", slotLabels, nil),
		filesQueued:   prometheus.NewDesc("ds_analysis_files_queued", "Files waiting on the slot, over its running and queued cameras.", slotLabels, nil),
		oldestQueued:  prometheus.NewDesc("ds_analysis_oldest_queued_file_age_seconds", "How long the oldest file waiting on the slot has waited since it arrived; 0 when none waits.", slotLabels, nil),
		filesDone:     prometheus.NewDesc("ds_analysis_files_done_total", "Files played to the end on the slot.", slotLabels, nil),
		filesFailed:   prometheus.NewDesc("ds_analysis_files_failed_total", "Files that could not be played on the slot (file_error).", slotLabels, nil),
		fileErrors:    prometheus.NewDesc("ds_analysis_file_errors_total", "Files that could not be played on the slot, by class ("+strings.Join(ErrorClasses, ", ")+").", []string{"app_id", "stream_id", "class"}, nil),
		stalls:        prometheus.NewDesc("ds_analysis_stalls_total", "Files on the slot whose frames stopped for the stall timeout.", slotLabels, nil),
		frames:        prometheus.NewDesc("ds_analysis_frames_total", "Frames the engine analysed on the slot.", slotLabels, nil),
		fps:           prometheus.NewDesc("ds_analysis_slot_frames_per_second", "The slot's current analysis rate.", slotLabels, nil),
		gap:           prometheus.NewDesc("ds_analysis_switch_gap_seconds", "Time from a file's last frame to the next file's first on the slot.", slotLabels, nil),
		firstFrame:    prometheus.NewDesc("ds_analysis_time_to_first_frame_seconds", "Time from a file's play to its first frame (file_started) on the slot.", slotLabels, nil),
		speed:         prometheus.NewDesc("ds_analysis_file_speed_ratio", "A file's duration over the wall time from its play to its end on the slot (times real time).", slotLabels, nil),
		linkConnected: prometheus.NewDesc("ds_analysis_link_connected", "1 while the WebSocket to FastAPI is up and confirmed.", []string{"app_id"}, nil),
		reconnects:    prometheus.NewDesc("ds_analysis_link_reconnects_total", "WebSocket connections made after the first.", []string{"app_id"}, nil),
		outbox:        prometheus.NewDesc("ds_analysis_outbox_messages", "Messages to FastAPI waiting to be sent or confirmed.", []string{"app_id"}, nil),
		messages:      prometheus.NewDesc("ds_analysis_messages_total", "WebSocket messages by direction (sent, received) and type.", []string{"app_id", "direction", "type"}, nil),
		restarts:      prometheus.NewDesc("ds_analysis_engine_restarts_total", "Engine restarts in place.", []string{"app_id"}, nil),
		cpu:           prometheus.NewDesc("ds_analysis_process_cpu_seconds_total", "CPU time of the supervisor or the engine.", []string{"app_id", "process"}, nil),
		rss:           prometheus.NewDesc("ds_analysis_process_resident_memory_bytes", "Resident memory of the supervisor or the engine.", []string{"app_id", "process"}, nil),
		gpuUtil:       prometheus.NewDesc("ds_analysis_gpu_utilization_ratio", "GPU utilisation (NVML), 0 to 1.", []string{"app_id", "gpu"}, nil),
		gpuUsed:       prometheus.NewDesc("ds_analysis_gpu_memory_used_bytes", "GPU memory in use (NVML).", []string{"app_id", "gpu"}, nil),
		gpuTotal:      prometheus.NewDesc("ds_analysis_gpu_memory_total_bytes", "GPU memory (NVML).", []string{"app_id", "gpu"}, nil),
	}
)

// collector turns a Snapshot into const metrics at each scrape.
type collector struct{ e *Exporter }

// Describe sends nothing: the collector is unchecked, since which series exist depends on
// the snapshot (slots, GPUs, message types).
func (c *collector) Describe(chan<- *prometheus.Desc) {}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	id := c.e.appID
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{id}, labels...)...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, append([]string{id}, labels...)...)
	}
	hist := func(d *prometheus.Desc, h *Histogram, bounds []float64, labels ...string) {
		ch <- prometheus.MustNewConstHistogram(d, h.count, h.sum, h.cumulative(bounds), append([]string{id}, labels...)...)
	}
	s, err := c.e.snapshot(context.Background())
	if err != nil {
		gauge(descs.up, 0)
		return
	}
	gauge(descs.up, 1)
	gauge(descs.ready, b2f(s.Ready))
	for _, sl := range s.Slots {
		sid := strconv.Itoa(sl.StreamID)
		for _, st := range SlotStates {
			gauge(descs.slotState, b2f(st == sl.State), sid, st)
		}
		gauge(descs.busy, b2f(sl.Busy), sid)
		gauge(descs.camerasQueued, float64(sl.CamerasQueued), sid)
		gauge(descs.filesQueued, float64(sl.FilesQueued), sid)
		gauge(descs.oldestQueued, sl.OldestQueuedAge.Seconds(), sid)
		counter(descs.filesDone, float64(sl.FilesDone), sid)
		counter(descs.filesFailed, float64(sl.FilesFailed), sid)
		for _, class := range ErrorClasses {
			counter(descs.fileErrors, float64(sl.FileErrors[class]), sid, class)
		}
		counter(descs.stalls, float64(sl.Stalls), sid)
		counter(descs.frames, float64(sl.Frames), sid)
		gauge(descs.fps, sl.FPS, sid)
		hist(descs.gap, &sl.SwitchGap, GapBuckets, sid)
		hist(descs.firstFrame, &sl.FirstFrame, FirstFrameBuckets, sid)
		hist(descs.speed, &sl.Speed, SpeedBuckets, sid)
	}
	if l := s.Link; l != nil {
		gauge(descs.linkConnected, b2f(l.Connected))
		counter(descs.reconnects, float64(l.Reconnects))
		gauge(descs.outbox, float64(l.Outbox))
		for dir, m := range map[string]map[string]uint64{"sent": l.Sent, "received": l.Received} {
			for typ, n := range m {
				counter(descs.messages, float64(n), dir, typ)
			}
		}
	}
	counter(descs.restarts, float64(s.EngineRestarts))
	for _, p := range s.Processes {
		counter(descs.cpu, p.CPUSeconds, p.Name)
		gauge(descs.rss, float64(p.RSSBytes), p.Name)
	}
	for _, g := range s.GPUs {
		gid := strconv.Itoa(g.ID)
		if g.Utilization != nil {
			gauge(descs.gpuUtil, *g.Utilization, gid)
		}
		if g.MemoryUsedBytes != nil {
			gauge(descs.gpuUsed, float64(*g.MemoryUsedBytes), gid)
		}
		if g.MemoryTotalBytes != nil {
			gauge(descs.gpuTotal, float64(*g.MemoryTotalBytes), gid)
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
