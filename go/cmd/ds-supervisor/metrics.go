package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/supervisor"
)

// serveMetrics starts the exporter on --metrics-addr until ctx is done, with the
// --metrics-web-config file (checked by parseSettings) when given, and returns its
// source for supervisor.Run (nil without an exporter). An address that cannot be bound
// is a settings error.
func serveMetrics(ctx context.Context, s settings, log zerolog.Logger) (*supervisor.StatsSource, int) {
	if s.MetricsAddr == "" {
		return nil, supervisor.ExitOK
	}
	ln, err := promexport.Listen(s.MetricsAddr)
	if err != nil {
		log.Error().Err(err).Msg("metrics exporter")
		fmt.Fprintf(os.Stderr, "ds-supervisor: %v\n", err)
		return nil, exitSettings
	}
	src := supervisor.NewStatsSource()
	// The exporter-toolkit logs through slog; its records join ours.
	tlog := slog.New(zerolog.NewSlogHandler(log.With().Str("component", "metrics").Logger()))
	go func() {
		if err := promexport.New(s.AppID, src).Serve(ctx, ln, s.MetricsWebConfig, tlog); err != nil {
			log.Error().Err(err).Msg("metrics exporter stopped")
		}
	}()
	log.Info().Str("metrics_addr", ln.Addr().String()).Str("web_config", s.MetricsWebConfig).
		Msg("serving /metrics, /healthz, /readyz")
	return src, supervisor.ExitOK
}
