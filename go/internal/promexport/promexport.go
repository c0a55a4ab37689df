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
	"sort"
	"strconv"
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

// SourceFunc adapts a function to Source.
type SourceFunc func(ctx context.Context) (Snapshot, error)

// Snapshot implements Source.
func (f SourceFunc) Snapshot(ctx context.Context) (Snapshot, error) { return f(ctx) }

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
	StreamID      int
	State         string // idle, running, … (one series per state, 1 for the current one)
	CamerasQueued int
	FilesQueued   int
	FilesDone     uint64
	FilesFailed   uint64
	Stalls        uint64 // files whose frames stopped for the stall timeout
	Frames        uint64
	FPS           float64
	// SwitchGap is the time from a file's last frame to the next file's first on
	// this slot.
	SwitchGap Histogram
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

// GapBuckets are the switch-gap histogram's upper bounds in seconds: the engine's gap
// is a few milliseconds, the target 10 ms median and 25 ms p99, 2 s is a failure.
var GapBuckets = [...]float64{0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2}

// Histogram accumulates observations in GapBuckets. The zero value is ready to use;
// it is not safe for concurrent use (the loop owns it and copies it into snapshots).
type Histogram struct {
	counts [len(GapBuckets) + 1]uint64 // one per bucket of GapBuckets, then +Inf
	count  uint64
	sum    float64
}

// Observe adds one observation in seconds.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(GapBuckets[:], v) // first bound ≥ v: buckets are "le"
	h.counts[i]++
	h.count++
	h.sum += v
}

// Count is the number of observations.
func (h *Histogram) Count() uint64 { return h.count }

func (h *Histogram) cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(GapBuckets))
	var c uint64
	for i, b := range GapBuckets {
		c += h.counts[i]
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
		up, ready, slotState, camerasQueued, filesQueued, filesDone, filesFailed, stalls, frames, fps, gap,
		linkConnected, reconnects, outbox, messages, restarts, cpu, rss, gpuUtil, gpuUsed, gpuTotal *prometheus.Desc
	}{
		up:            prometheus.NewDesc("ds_analysis_up", "1 when the run loop answered this scrape within 1 s.", []string{"app_id"}, nil),
		ready:         prometheus.NewDesc("ds_analysis_ready", "1 when the engine is ready and FastAPI confirmed the handshake.", []string{"app_id"}, nil),
		slotState:     prometheus.NewDesc("ds_analysis_slot_state", "1 for the slot's current state, 0 for the others.", []string{"app_id", "stream_id", "state"}, nil),
		camerasQueued: prometheus.NewDesc("ds_analysis_cameras_queued", "Cameras waiting for the slot.", slotLabels, nil),
		filesQueued:   prometheus.NewDesc("ds_analysis_files_queued", "Files waiting on the slot, over its running and queued cameras.", slotLabels, nil),
		filesDone:     prometheus.NewDesc("ds_analysis_files_done_total", "Files played to the end on the slot.", slotLabels, nil),
		filesFailed:   prometheus.NewDesc("ds_analysis_files_failed_total", "Files that could not be played on the slot (file_error).", slotLabels, nil),
		stalls:        prometheus.NewDesc("ds_analysis_stalls_total", "Files on the slot whose frames stopped for the stall timeout.", slotLabels, nil),
		frames:        prometheus.NewDesc("ds_analysis_frames_total", "Frames the engine analysed on the slot.", slotLabels, nil),
		fps:           prometheus.NewDesc("ds_analysis_slot_frames_per_second", "The slot's current analysis rate.", slotLabels, nil),
		gap:           prometheus.NewDesc("ds_analysis_switch_gap_seconds", "Time from a file's last frame to the next file's first on the slot.", slotLabels, nil),
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
		gauge(descs.camerasQueued, float64(sl.CamerasQueued), sid)
		gauge(descs.filesQueued, float64(sl.FilesQueued), sid)
		counter(descs.filesDone, float64(sl.FilesDone), sid)
		counter(descs.filesFailed, float64(sl.FilesFailed), sid)
		counter(descs.stalls, float64(sl.Stalls), sid)
		counter(descs.frames, float64(sl.Frames), sid)
		gauge(descs.fps, sl.FPS, sid)
		ch <- prometheus.MustNewConstHistogram(descs.gap, sl.SwitchGap.count, sl.SwitchGap.sum, sl.SwitchGap.cumulative(), id, sid)
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
