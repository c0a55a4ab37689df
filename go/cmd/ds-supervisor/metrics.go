package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/supervisor"
)

// metricsSource feeds the Prometheus exporter. Until the run loop starts (the engine
// may spend minutes loading models) it answers by itself, healthy and not ready; then
// each scrape and probe is a request to the loop, so a loop that stops answering
// fails /healthz.
type metricsSource struct {
	requests chan supervisor.StatsRequest // nil without an exporter
	looping  atomic.Bool
}

func (m *metricsSource) Snapshot(ctx context.Context) (promexport.Snapshot, error) {
	if !m.looping.Load() {
		var snap promexport.Snapshot
		if u, ok := metrics.ReadUsage(os.Getpid()); ok {
			snap.Processes = []promexport.Process{{Name: "supervisor", CPUSeconds: u.CPUSeconds, RSSBytes: u.RSSBytes}}
		}
		return snap, nil
	}
	reply := make(chan promexport.Snapshot, 1)
	select {
	case m.requests <- reply:
	case <-ctx.Done():
		return promexport.Snapshot{}, ctx.Err()
	}
	select {
	case s := <-reply:
		return s, nil
	case <-ctx.Done():
		return promexport.Snapshot{}, ctx.Err()
	}
}

// serveMetrics starts the exporter on --metrics-addr until ctx is done, with the
// --metrics-web-config file (checked by parseSettings) when given. An address that
// cannot be bound is a settings error.
func serveMetrics(ctx context.Context, s settings, log zerolog.Logger) (*metricsSource, int) {
	src := &metricsSource{}
	if s.MetricsAddr == "" {
		return src, exitOK
	}
	ln, err := promexport.Listen(s.MetricsAddr)
	if err != nil {
		log.Error().Err(err).Msg("metrics exporter")
		fmt.Fprintf(os.Stderr, "ds-supervisor: %v\n", err)
		return nil, exitSettings
	}
	src.requests = make(chan supervisor.StatsRequest)
	// The exporter-toolkit logs through slog; its records join ours.
	tlog := slog.New(zerolog.NewSlogHandler(log.With().Str("component", "metrics").Logger()))
	go func() {
		if err := promexport.New(s.AppID, src).Serve(ctx, ln, s.MetricsWebConfig, tlog); err != nil {
			log.Error().Err(err).Msg("metrics exporter stopped")
		}
	}()
	log.Info().Str("metrics_addr", ln.Addr().String()).Str("web_config", s.MetricsWebConfig).
		Msg("serving /metrics, /healthz, /readyz")
	return src, exitOK
}
