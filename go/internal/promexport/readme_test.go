package promexport

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// readmeSection returns README.md's section under heading (a "### " one), up to the
// next heading of its level or above.
func readmeSection(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("README has no %q", heading)
	}
	text = text[start+len(heading)+2:]
	for _, next := range []string{"\n### ", "\n## "} {
		if i := strings.Index(text, next); i >= 0 {
			text = text[:i]
		}
	}
	return text
}

// TestReadmeNamesEverySeries: README's "Metrics and health probes" names every series
// the exporter can send, and its "Monitoring" table lists exactly the file error classes.
func TestReadmeNamesEverySeries(t *testing.T) {
	metrics := readmeSection(t, "### Metrics and health probes")
	// A snapshot with every part, so that every series is in the scrape.
	full := Snapshot{Ready: true, Slots: []Slot{{StreamID: 0, State: "running"}},
		Link:      &Link{Sent: map[string]uint64{"file_done": 1}},
		Processes: []Process{{Name: "engine"}},
		GPUs:      []GPU{{Utilization: ptr(0.5), MemoryUsedBytes: ptr(uint64(1)), MemoryTotalBytes: ptr(uint64(2))}}}
	e := New("cam_a", &fakeLoop{s: full})
	families, err := e.reg.Gather()
	if err != nil || len(families) < 20 {
		t.Fatalf("%d families, %v", len(families), err)
	}
	for _, f := range families {
		name := f.GetName()
		if !strings.Contains(metrics, "`"+name+"`") && !strings.Contains(metrics, "`"+name+"{") {
			t.Errorf("README's metrics list lacks %s", name)
		}
	}

	monitoring := readmeSection(t, "### Monitoring")
	row := regexp.MustCompile("^\\| `([a-z]+)` \\|")
	var classes []string
	inTable := false
	for _, line := range strings.Split(monitoring, "\n") {
		switch {
		case strings.HasPrefix(line, "| `class` |"):
			inTable = true
		case inTable && !strings.HasPrefix(line, "|"):
			inTable = false
		case inTable:
			if m := row.FindStringSubmatch(line); m != nil {
				classes = append(classes, m[1])
			}
		}
	}
	if !slices.Equal(classes, ErrorClasses) {
		t.Errorf("README's class table lists %v, the exporter %v", classes, ErrorClasses)
	}
}
