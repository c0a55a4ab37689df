package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestDeepstreamAppOptions: each of deepstream-app's own options is accepted, never
// refused: passed on to the engine, ignored with a sentence for the log, or answered.
func TestDeepstreamAppOptions(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfg, []byte("[source0]\nenable=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eng := filepath.Join(dir, "ds-gst-engine")
	if err := os.WriteFile(eng, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := func(k string) string { return map[string]string{"APP_ID": "a"}[k] }
	self := filepath.Join(dir, "ds-supervisor")

	for _, tc := range []struct {
		args        []string
		wantEngine  []string
		wantIgnored []string // substrings, one per ignored sentence
		wantConfig  string
	}{
		{args: []string{"-c", cfg}, wantConfig: cfg},
		{args: []string{"--cfg-file=" + cfg}, wantConfig: cfg},
		{args: []string{"-c", cfg, "-t"}, wantEngine: []string{"-t"}},
		{args: []string{"--tiledtext", "-c", cfg}, wantEngine: []string{"-t"}},
		{args: []string{"-c", cfg, "-i", "file:///a.mp4"}, wantIgnored: []string{"-i file:///a.mp4 ignored"}},
		{args: []string{"-c", cfg, "--input-uri", "rtsp://h/1", "-i=file:///b.mp4"},
			wantIgnored: []string{"-i rtsp://h/1 ignored", "-i file:///b.mp4 ignored"}},
		{args: []string{"-c", cfg, "--gst-debug-level=3", "--gst-debug", "nvinfer:5", "--gst-disable-registry-fork"},
			wantEngine: []string{"--gst-debug-level=3", "--gst-debug=nvinfer:5", "--gst-disable-registry-fork"}},
		{args: []string{"--gst-plugin-path", "/opt/p", "-c", cfg, "-t"}, wantEngine: []string{"-t", "--gst-plugin-path=/opt/p"}},
		{args: []string{"-c", cfg, "--gst-version", "--gst-debug-help", "--gst-made-up=1", "--gst-debug-no-color=x"},
			wantIgnored: []string{"--gst-version ignored", "--gst-debug-help ignored", "--gst-made-up=1 ignored", "--gst-debug-no-color=x ignored"}},
		// After "--" nothing is an option; the supervisor takes no arguments, so this
		// stays an error.
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s, err := parseSettings(tc.args, env, self)
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !slices.Equal(s.EngineArgs, tc.wantEngine) {
				t.Errorf("engine args %q, want %q", s.EngineArgs, tc.wantEngine)
			}
			if len(s.Ignored) != len(tc.wantIgnored) {
				t.Fatalf("ignored %q, want %d sentences like %q", s.Ignored, len(tc.wantIgnored), tc.wantIgnored)
			}
			for i, w := range tc.wantIgnored {
				if !strings.Contains(s.Ignored[i], w) {
					t.Errorf("ignored[%d] %q, want %q", i, s.Ignored[i], w)
				}
			}
			if tc.wantConfig != "" && s.ConfigPath != tc.wantConfig {
				t.Errorf("config %q", s.ConfigPath)
			}
		})
	}

	for _, a := range []string{"-h", "--help", "--help-all", "--help-gst"} {
		if _, err := parseSettings([]string{a}, env, self); !errors.Is(err, errHelp) {
			t.Errorf("%s: %v, want help", a, err)
		}
	}
	for _, a := range []string{"-v", "--version"} {
		if _, err := parseSettings([]string{a}, env, self); !errors.Is(err, errVersion) {
			t.Errorf("%s: %v, want version", a, err)
		}
	}
	// --version-all needs nothing else, and finds the engine as a start would.
	s, err := parseSettings([]string{"--version-all"}, func(string) string { return "" }, self)
	if !errors.Is(err, errVersionAll) || s.Engine != eng {
		t.Errorf("--version-all: %v, engine %q, want %q", err, s.Engine, eng)
	}
	s, err = parseSettings([]string{"--version-all", "--engine", "/x/deepstream-app-engine"}, env, self)
	if !errors.Is(err, errVersionAll) || s.Engine != "/x/deepstream-app-engine" {
		t.Errorf("--version-all --engine: %v, engine %q", err, s.Engine)
	}
	if _, err := parseSettings([]string{"-c", cfg, "--", "--gst-debug=1"}, env, self); err == nil {
		t.Error(`an argument after "--" was accepted`)
	}
}

// TestDropInCommandLine starts the supervisor as the specification's launch line would
// start deepstream-app, with -t, -i and --gst-* options, against the real GStreamer
// engine: the engine's command line carries -t and the GStreamer options (the engine
// accepted them: it is ready), and the log says what was ignored. -v and --version-all
// print and exit 0.
func TestDropInCommandLine(t *testing.T) {
	engine := gstEngine(t)
	dir, err := os.MkdirTemp("", "di") // short: the instance dir holds a socket
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	cfg := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfg, []byte("[source0]\nenable=1\ntype=3\nuri=file:///dev/null\nnum-sources=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}

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
