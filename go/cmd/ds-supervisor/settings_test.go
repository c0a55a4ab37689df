package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestParseSettings(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "app.txt")
	if err := os.WriteFile(cfg, []byte("[source0]\nenable=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	eng := filepath.Join(dir, "ds-gst-engine")
	if err := os.WriteFile(eng, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	notExec := filepath.Join(dir, "plain")
	if err := os.WriteFile(notExec, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	self := filepath.Join(dir, "ds-supervisor")
	base := map[string]string{"APP_ID": "cam_a"}

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, s settings)
	}{
		{name: "defaults", args: []string{"-c", cfg}, env: base, check: func(t *testing.T, s settings) {
			if s.AppID != "cam_a" || s.ConfigPath != cfg || s.Engine != eng {
				t.Errorf("got %+v", s)
			}
			if s.WSURL != "ws://127.0.0.1:8000/ws" || s.LogRoot != defaultLogRoot || s.InstanceRoot != "/tmp/ds" {
				t.Errorf("defaults: %+v", s)
			}
			if s.EngineWorkDir != dir {
				t.Errorf("engine workdir %q, want the config's directory %q", s.EngineWorkDir, dir)
			}
			if s.LiveLevel != zerolog.WarnLevel || s.HeartbeatInterval != 5*time.Second || s.BackoffMax != time.Second {
				t.Errorf("timing defaults: %+v", s)
			}
		}},
		{name: "relative missing config", args: []string{"--cfg-file", "./" + filepath.Base(cfg)}, env: base,
			wantErr: "config ./app.txt"}, // relative to the test's cwd, which lacks it
		{name: "long config flag", args: []string{"--config", cfg}, env: base, check: func(t *testing.T, s settings) {
			if s.ConfigPath != cfg {
				t.Errorf("config %q", s.ConfigPath)
			}
		}},
		{name: "env overrides", args: []string{"-c", cfg}, env: map[string]string{
			"APP_ID": "x", "DS_WS_URL": "wss://h:1/p", "DS_ENGINE": eng, "DS_LOG_ROOT": "/var/log/x",
			"DS_LIVE_LOG_LEVEL": "INFO", "DS_HEARTBEAT_INTERVAL": "1s", "DS_BACKOFF_MIN": "10ms", "DS_BACKOFF_MAX": "2s",
		}, check: func(t *testing.T, s settings) {
			if s.WSURL != "wss://h:1/p" || s.LogRoot != "/var/log/x" || s.LiveLevel != zerolog.InfoLevel ||
				s.HeartbeatInterval != time.Second || s.BackoffMin != 10*time.Millisecond || s.BackoffMax != 2*time.Second {
				t.Errorf("got %+v", s)
			}
		}},
		{name: "flag beats env", args: []string{"-c", cfg, "--ws-url", "ws://a:2/ws"},
			env: map[string]string{"APP_ID": "x", "DS_WS_URL": "ws://b:3/ws"}, check: func(t *testing.T, s settings) {
				if s.WSURL != "ws://a:2/ws" {
					t.Errorf("ws url %q", s.WSURL)
				}
			}},
		{name: "no app id", args: []string{"-c", cfg}, env: map[string]string{}, wantErr: "APP_ID is not set"},
		{name: "bad app id", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "a/b"}, wantErr: "APP_ID"},
		{name: "no config", args: nil, env: base, wantErr: "no config file"},
		{name: "missing config", args: []string{"-c", dir + "/nope.txt"}, env: base, wantErr: "nope.txt"},
		{name: "config is dir", args: []string{"-c", dir}, env: base, wantErr: "is a directory"},
		{name: "bad url", args: []string{"-c", cfg, "--ws-url", "http://x"}, env: base, wantErr: "ws-url"},
		{name: "missing engine", args: []string{"-c", cfg, "--engine", dir + "/none"}, env: base, wantErr: "engine"},
		{name: "engine not executable", args: []string{"-c", cfg, "--engine", notExec}, env: base, wantErr: "not an executable"},
		{name: "engine workdir", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "x", "DS_ENGINE_WORKDIR": "/"},
			check: func(t *testing.T, s settings) {
				if s.EngineWorkDir != "/" {
					t.Errorf("engine workdir %q", s.EngineWorkDir)
				}
			}},
		{name: "missing engine workdir", args: []string{"-c", cfg, "--engine-workdir", dir + "/none"}, env: base,
			wantErr: "engine-workdir: stat " + dir + "/none: no such file"},
		{name: "engine workdir is a file", args: []string{"-c", cfg, "--engine-workdir", notExec}, env: base,
			wantErr: "engine-workdir " + notExec + ": not a directory"},
		{name: "relative log root", args: []string{"-c", cfg, "--log-root", "logs"}, env: base, wantErr: "absolute"},
		{name: "bad level", args: []string{"-c", cfg, "--live-log-level", "loud"}, env: base, wantErr: "live-log-level"},
		{name: "bad duration", args: []string{"-c", cfg, "--heartbeat-timeout", "5"}, env: base, wantErr: "heartbeat-timeout"},
		{name: "restarts and resume", args: []string{"-c", cfg, "--engine-restarts", "0", "--resume"}, env: base,
			check: func(t *testing.T, s settings) {
				if s.EngineRestarts != 0 || !s.Resume {
					t.Errorf("restarts %d resume %v", s.EngineRestarts, s.Resume)
				}
			}},
		{name: "resume from env", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "x", "DS_RESUME": "1"},
			check: func(t *testing.T, s settings) {
				if !s.Resume || s.EngineRestarts != 3 {
					t.Errorf("resume %v restarts %d", s.Resume, s.EngineRestarts)
				}
			}},
		{name: "bad resume env", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "x", "DS_RESUME": "maybe"}, wantErr: "DS_RESUME"},
		{name: "bad restarts", args: []string{"-c", cfg, "--engine-restarts", "-1"}, env: base, wantErr: "engine-restarts"},
		{name: "stall timeout default", args: []string{"-c", cfg}, env: base,
			check: func(t *testing.T, s settings) {
				if s.StallTimeout != 20*time.Second || s.stallTimeout() != 20*time.Second {
					t.Errorf("stall timeout %v", s.StallTimeout)
				}
			}},
		{name: "stall timeout from env, and off", args: []string{"-c", cfg, "--stall-timeout", "0"},
			env: map[string]string{"APP_ID": "x", "DS_STALL_TIMEOUT": "45s"},
			check: func(t *testing.T, s settings) {
				if s.StallTimeout != 0 || s.stallTimeout() >= 0 {
					t.Errorf("stall timeout %v (%v)", s.StallTimeout, s.stallTimeout())
				}
			}},
		{name: "stall timeout below 2s", args: []string{"-c", cfg, "--stall-timeout", "1s"}, env: base, wantErr: "stall-timeout \"1s\": want 0 (off) or a duration of at least 2s"},
		{name: "bad stall timeout", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "x", "DS_STALL_TIMEOUT": "soon"}, wantErr: "stall-timeout"},
		{name: "negative duration", args: []string{"-c", cfg, "--backoff-max", "-1s"}, env: base, wantErr: "backoff-max"},
		{name: "min above max", args: []string{"-c", cfg, "--backoff-min", "20s"}, env: base, wantErr: "above"},
		{name: "unknown flag", args: []string{"-c", cfg, "--frobnicate"}, env: base, wantErr: "frobnicate"},
		{name: "stray argument", args: []string{"-c", cfg, "extra"}, env: base, wantErr: "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			getenv := func(k string) string { return tc.env[k] }
			s, err := parseSettings(tc.args, getenv, self)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "\n") {
					t.Errorf("error must be one line: %q", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			tc.check(t, s)
		})
	}
}

func TestParseSettingsHelpVersion(t *testing.T) {
	for _, a := range []string{"--help", "-h"} {
		if _, err := parseSettings([]string{a}, func(string) string { return "" }, "x"); !errors.Is(err, errHelp) {
			t.Errorf("%s: %v", a, err)
		}
	}
	if _, err := parseSettings([]string{"--version"}, func(string) string { return "" }, "x"); !errors.Is(err, errVersion) {
		t.Errorf("--version: %v", err)
	}
	var b strings.Builder
	usage(&b)
	for _, want := range []string{"DS_WS_URL", "DS_ENGINE", "DS_LOG_ROOT", "DS_ENGINE_WORKDIR", "APP_ID", "--cfg-file"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("usage lacks %s", want)
		}
	}
}
