package logs

import (
	"fmt"
	"strings"
	"testing"
)

// TestAppIDInEveryRecord: supervisor records, engine lines (split or not, with or
// without a newline at the end) and the notice that replaces an oversized record all
// name the instance, while the lines kept in memory and sent live do not repeat it.
func TestAppIDInEveryRecord(t *testing.T) {
	const id = `cam "7"` // quoting survives
	l := open(t, Options{AppID: id, MaxSize: 128 << 10, Recent: 100})
	log := l.Logger()
	log.Info().Str("camera", "7").Msg("sup")
	log.Warn().Msg("warned")
	w := l.EngineWriter()
	fmt.Fprintf(w, "eng line\nERROR: bad\n%s\n", strings.Repeat("x", maxLine+10)) // split in two
	log.Info().Str("pad", strings.Repeat("p", 130<<10)).Msg("too big")
	fmt.Fprint(w, "unterminated")
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	recs := records(t, l.Path())
	sources := map[any]int{}
	for i, r := range recs {
		if r[AppIDField] != id {
			t.Errorf("record %d has app_id %v: %v", i, r[AppIDField], r)
		}
		sources[r["source"]]++
	}
	if sources["supervisor"] != 2 || sources["engine"] != 5 || sources["logs"] != 1 {
		t.Errorf("records by source %v, want supervisor 2, engine 5, logs 1", sources)
	}
	for _, line := range l.Recent(100, 0) {
		if strings.Contains(line.Message, AppIDField+"=") {
			t.Errorf("kept line repeats the app id: %q", line.Message)
		}
	}
}
