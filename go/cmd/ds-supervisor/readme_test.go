package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeSettingsTable: README's Configuration table and the settings the supervisor
// parses (and --help prints) are the same list: each option's flags, env variable and
// default appear in one row, and every row names an option.
func TestReadmeSettingsTable(t *testing.T) {
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "### Configuration")
	if start < 0 {
		t.Fatal("README has no Configuration section")
	}
	text = text[start:]
	if end := strings.Index(text[1:], "\n#"); end > 0 {
		text = text[:end+1]
	}
	code := regexp.MustCompile("`([^`]*)`")
	type row struct{ flags, env, def []string }
	var rows []row
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 || !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| flag") {
			continue
		}
		// A row may list several settings side by side: `--a` / `--b` | `A` / `B` | `1` / `2`.
		flagParts, envParts, defParts := strings.Split(cells[1], " / "), strings.Split(cells[2], " / "), strings.Split(cells[3], " / ")
		for i, fp := range flagParts {
			var r row
			for _, m := range code.FindAllStringSubmatch(fp, -1) {
				r.flags = append(r.flags, strings.TrimLeft(m[1], "-"))
			}
			if i < len(envParts) {
				for _, m := range code.FindAllStringSubmatch(envParts[i], -1) {
					r.env = append(r.env, m[1])
				}
			}
			if len(flagParts) == len(defParts) {
				for _, m := range code.FindAllStringSubmatch(defParts[i], -1) {
					r.def = append(r.def, m[1])
				}
			}
			rows = append(rows, r)
		}
	}
	if len(rows) < len(options) {
		t.Fatalf("README table has %d settings, the supervisor %d", len(rows), len(options))
	}
	var help strings.Builder
	usage(&help)
	used := make([]bool, len(rows))
	for _, o := range options {
		found := false
		for i, r := range rows {
			if !slices.Equal(r.flags, o.names) {
				continue
			}
			found, used[i] = true, true
			if o.env != "" && !slices.Equal(r.env, []string{o.env}) {
				t.Errorf("--%s: README says env %q, the supervisor reads %q", o.names[0], r.env, o.env)
			}
			if o.def != "" && !slices.Contains(r.def, o.def) {
				t.Errorf("--%s: README says default %q, the supervisor has %q", o.names[0], r.def, o.def)
			}
		}
		if !found {
			t.Errorf("--%s (%s) has no row in README's Configuration table", o.names[0], o.env)
		}
		if !strings.Contains(help.String(), "--"+o.names[len(o.names)-1]) {
			t.Errorf("--help lacks --%s", o.names[len(o.names)-1])
		}
	}
	// The rows that are no option of the table above: APP_ID, DS_WS_TOKEN (environment
	// only, so that no command line carries it) and --resume, which parseSettings reads
	// itself (and --help prints).
	for i, r := range rows {
		if used[i] {
			continue
		}
		switch {
		case len(r.flags) == 0 && slices.Equal(r.env, []string{"APP_ID"}):
		case len(r.flags) == 0 && slices.Equal(r.env, []string{"DS_WS_TOKEN"}):
		case slices.Equal(r.flags, []string{"resume"}) && slices.Equal(r.env, []string{"DS_RESUME=1"}):
		default:
			t.Errorf("README row %v / %v is no setting of the supervisor", r.flags, r.env)
			continue
		}
		for _, w := range append(r.flags, r.env...) {
			if !strings.Contains(help.String(), w) {
				t.Errorf("--help lacks %s", w)
			}
		}
	}
}

// TestReadmeGoVersion: the Go version README asks for is go.mod's.
func TestReadmeGoVersion(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(mod)
	got := regexp.MustCompile(`Go ≥ (\d+\.\d+)`).FindAllSubmatch(readme, -1)
	if want == nil || len(got) == 0 {
		t.Fatalf("go.mod %q, README %q", want, got)
	}
	for _, g := range got {
		if string(g[1]) != string(want[1]) {
			t.Errorf("README asks for Go ≥ %s, go.mod for %s", g[1], want[1])
		}
	}
}
