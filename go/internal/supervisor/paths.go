package supervisor

import (
	"context"
	"net/url"

	"github.com/cityeyelab/ds-analysis/go/internal/analysis"
	"github.com/cityeyelab/ds-analysis/go/internal/pathcheck"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/store"
)

// pathChecks are the plays waiting for their file's path check (pathcheck): at most one
// per slot, the slot's current file.
type pathChecks struct {
	checker *pathcheck.Checker
	results chan pathcheck.Result
	pending []*pendingPlay // per slot
	token   uint64
}

type pendingPlay struct {
	cmd    analysis.Command
	token  uint64
	cancel context.CancelFunc
}

func newPathChecks(slots int, c *pathcheck.Checker) pathChecks {
	return pathChecks{checker: c, results: make(chan pathcheck.Result), pending: make([]*pendingPlay, slots)}
}

// start checks the local file of play c; the loop plays it when the answer says so.
func (p *pathChecks) start(c analysis.Command, path string) {
	p.cancel(c.Slot)
	p.token++
	ctx, cancel := context.WithCancel(context.Background())
	p.pending[c.Slot] = &pendingPlay{cmd: c, token: p.token, cancel: cancel}
	p.checker.Check(ctx, c.Slot, p.token, path, p.results)
}

// take returns the play r answers, and forgets it; nil for an answer that came too late.
func (p *pathChecks) take(r pathcheck.Result) *pendingPlay {
	if r.Slot < 0 || r.Slot >= len(p.pending) {
		return nil
	}
	pp := p.pending[r.Slot]
	if pp == nil || pp.token != r.Token {
		return nil
	}
	pp.cancel()
	p.pending[r.Slot] = nil
	return pp
}

// cancel drops the slot's pending play (stopped, interrupted).
func (p *pathChecks) cancel(slot int) {
	if slot < 0 || slot >= len(p.pending) {
		return
	}
	if pp := p.pending[slot]; pp != nil {
		pp.cancel()
		p.pending[slot] = nil
	}
}

func (p *pathChecks) cancelAll() {
	for i := range p.pending {
		p.cancel(i)
	}
}

// localPath is the path of a file:// URI; ok false for any other URI.
func localPath(uri string) (string, bool) {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "file" || u.Path == "" {
		return "", false
	}
	return u.Path, true
}

// pathChecked plays a file whose path check passed, or fails it with the check's
// reason; an answer about a file that is no longer the slot's current one is dropped.
func (l *loop) pathChecked(r pathcheck.Result) {
	pp := l.checks.take(r)
	if pp == nil {
		return
	}
	c := pp.cmd
	if cur, ok := l.state.CurrentFile(c.Slot); !ok || cur != c.FileID || !l.eng.up() {
		return
	}
	if r.Err != nil {
		reason := r.Err.Error()
		l.log.Warn().Int("slot", c.Slot).Int64("file_id", c.FileID).Str("reason", reason).Msg("input path refused")
		l.apply(l.prom.failures(promexport.ErrInput, l.store.Apply(store.Failed(c.Slot, c.FileID, reason))))
		return
	}
	if res, ok := l.play(c); ok {
		l.apply(res)
	}
}
