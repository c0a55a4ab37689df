package supervisor

import (
	"context"
	"os"
	"sync/atomic"

	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
)

// StatsSource feeds the Prometheus exporter (it is a promexport.Source). Until Run
// serves it (the engine may spend minutes loading models) it answers by itself: the
// supervisor's own process, healthy and not ready. Then each scrape and probe is a
// request to the loop, so that a loop that stops answering fails /healthz.
type StatsSource struct {
	requests chan chan<- promexport.Snapshot
	serving  atomic.Bool
}

// NewStatsSource returns a source for Deps.Stats.
func NewStatsSource() *StatsSource {
	return &StatsSource{requests: make(chan chan<- promexport.Snapshot)}
}

// Snapshot returns the exporter's figures: the loop's once Run serves s, or until ctx
// is done.
func (s *StatsSource) Snapshot(ctx context.Context) (promexport.Snapshot, error) {
	if !s.serving.Load() {
		return promexport.Snapshot{Processes: processStats([]int{os.Getpid()}, []string{"supervisor"})}, nil
	}
	reply := make(chan promexport.Snapshot, 1)
	select {
	case s.requests <- reply:
	case <-ctx.Done():
		return promexport.Snapshot{}, ctx.Err()
	}
	select {
	case snap := <-reply:
		return snap, nil
	case <-ctx.Done():
		return promexport.Snapshot{}, ctx.Err()
	}
}

// serve makes the loop answer s; the loop reads the returned channel (nil when s is).
func (s *StatsSource) serve() <-chan chan<- promexport.Snapshot {
	if s == nil {
		return nil
	}
	s.serving.Store(true)
	return s.requests
}

// processStats reads the CPU time and RSS of the processes pids, named names, for the
// exporter; a process that cannot be read is left out.
func processStats(pids []int, names []string) []promexport.Process {
	var out []promexport.Process
	for i, pid := range pids {
		if u, ok := metrics.ReadUsage(pid); ok {
			out = append(out, promexport.Process{Name: names[i], CPUSeconds: u.CPUSeconds, RSSBytes: u.RSSBytes})
		}
	}
	return out
}
