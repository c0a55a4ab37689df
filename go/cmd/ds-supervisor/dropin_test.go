package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDropInCommandLine starts the supervisor as the specification's launch line would
// start deepstream-app, with -t, -i and --gst-* options, against the real GStreamer
// engine: the engine's command line carries -t and the GStreamer options (the engine
// accepted them: it is ready), and the log says what was ignored. -v and --version-all
// print and exit 0.
func TestDropInCommandLine(t *testing.T) {
	engine := gstEngine(t)
	dir := shortDir(t, "di")
	cfg := writeFile(t, dir, "app.txt", engineConfig, 0o644)

	for _, a := range []string{"-v", "--version-all"} {
		var stdout, stderr bytes.Buffer
		cmd := supervisorCmd(dir, "ver", engine, &stderr, a)
		cmd.Stdout = &stdout
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s: %v; stderr %q", a, err, stderr.String())
		}
		if !strings.HasPrefix(stdout.String(), "ds-supervisor "+version) {
			t.Errorf("%s printed %q", a, stdout.String())
		}
		// The engine answers --version-all with its own line.
		if got := strings.Contains(stdout.String(), "ds-gst-engine "); got != (a == "--version-all") {
			t.Errorf("%s printed %q", a, stdout.String())
		}
	}

	var stderr bytes.Buffer
	cmd := supervisorCmd(dir, "dropin", engine, &stderr,
		"-c", cfg, "-t", "-i", "file:///x.mp4", "--gst-debug-level", "1", "--gst-debug-no-color", "--gst-version")
	p := startSupervisor(t, cmd, &stderr, dir, "dropin")
	pid := p.enginePID(t)
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		t.Fatal(err)
	}
	argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	if want := []string{engine, "-c", cfg, "-t", "--gst-debug-level=1", "--gst-debug-no-color"}; !slices.Equal(argv, want) {
		t.Errorf("engine argv %q, want %q", argv, want)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "logs", "instid_dropin-*", "*.log"))
	if len(logs) != 1 {
		t.Fatalf("log files %q", logs)
	}
	b, err := os.ReadFile(logs[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"-i file:///x.mp4 ignored", "--gst-version ignored"} {
		if !strings.Contains(string(b), w) {
			t.Errorf("log lacks %q:\n%s", w, b)
		}
	}
	p.stop(t)
}
