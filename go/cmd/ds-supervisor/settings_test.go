package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/testpki"
)

func TestParseSettings(t *testing.T) {
	dir, cfg, eng := settingsFiles(t)
	notExec := writeFile(t, dir, "plain", "", 0o644)
	self := filepath.Join(dir, "ds-supervisor")
	base := map[string]string{"APP_ID": "cam_a"}
	ca := testpki.NewCA(t, "test CA")
	client, other := ca.Client(t, "x"), ca.Client(t, "y")
	tokenFile := testpki.Write(t, dir, "token", []byte("tok-456\n"))
	emptyFile := testpki.Write(t, dir, "empty", nil)
	caFile := testpki.Write(t, dir, "ca.pem", ca.PEM)
	certFile := testpki.Write(t, dir, "client.pem", client.CertPEM)
	keyFile := testpki.Write(t, dir, "client.key", client.KeyPEM)
	otherKey := testpki.Write(t, dir, "other.key", other.KeyPEM)
	webCfg := testpki.Write(t, dir, "web.yml", []byte("basic_auth_users:\n  prom: $2y$10$QOauhQNbBCuQDKes6eFzPeMqBSjb7Mr5DUmpZ/VcEd00UAV/LDeSi\n"))
	badWebCfg := testpki.Write(t, dir, "bad-web.yml", []byte("tls_server_config:\n  cert_file: none.pem\n  key_file: none.key\n"))

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
		{name: "link credentials from env", args: []string{"-c", cfg}, env: map[string]string{
			"APP_ID": "x", "DS_WS_URL": "wss://h:1/ws", "DS_WS_TOKEN_FILE": tokenFile, "DS_WS_CA_FILE": caFile,
			"DS_WS_CLIENT_CERT": certFile, "DS_WS_CLIENT_KEY": keyFile,
		}, check: func(t *testing.T, s settings) {
			a := s.Auth
			if a.AppID != "x" || a.TokenFile != tokenFile || a.CAFile != caFile || a.ClientCert != certFile || a.ClientKey != keyFile || a.Token != "" {
				t.Errorf("auth %+v", a)
			}
		}},
		{name: "token value from env", args: []string{"-c", cfg, "--ws-url", "wss://h:1/ws"},
			env: map[string]string{"APP_ID": "x", "DS_WS_TOKEN": "tok-123"}, check: func(t *testing.T, s settings) {
				if s.Auth.Token != "tok-123" {
					t.Errorf("token not taken from DS_WS_TOKEN")
				}
				if strings.Contains(fmt.Sprintf("%+v %#v", s, s), "tok-123") {
					t.Errorf("settings print the token")
				}
			}},
		{name: "token twice", args: []string{"-c", cfg, "--ws-token-file", tokenFile},
			env: map[string]string{"APP_ID": "x", "DS_WS_TOKEN": "tok-123"}, wantErr: "both set"},
		{name: "missing token file", args: []string{"-c", cfg, "--ws-token-file", dir + "/none"}, env: base,
			wantErr: "ws-token-file: open " + dir + "/none: no such file"},
		{name: "empty token file", args: []string{"-c", cfg, "--ws-token-file", emptyFile}, env: base, wantErr: "the token is empty"},
		{name: "CA with ws://", args: []string{"-c", cfg, "--ws-ca-file", caFile}, env: base, wantErr: "need a wss:// ws-url"},
		{name: "CA not PEM", args: []string{"-c", cfg, "--ws-url", "wss://h/ws", "--ws-ca-file", emptyFile}, env: base,
			wantErr: "no PEM certificate"},
		{name: "cert without key", args: []string{"-c", cfg, "--ws-url", "wss://h/ws", "--ws-client-cert", certFile}, env: base,
			wantErr: "go together"},
		{name: "key of another cert", args: []string{"-c", cfg, "--ws-url", "wss://h/ws", "--ws-client-cert", certFile,
			"--ws-client-key", otherKey}, env: base, wantErr: "private key does not match public key"},
		{name: "web config", args: []string{"-c", cfg, "--metrics-addr", "127.0.0.1:0", "--metrics-web-config", webCfg}, env: base,
			check: func(t *testing.T, s settings) {
				if s.MetricsWebConfig != webCfg {
					t.Errorf("web config %q", s.MetricsWebConfig)
				}
			}},
		{name: "web config without address", args: []string{"-c", cfg}, env: map[string]string{"APP_ID": "x", "DS_METRICS_WEB_CONFIG": webCfg},
			wantErr: "without metrics-addr"},
		{name: "bad web config", args: []string{"-c", cfg, "--metrics-addr", "127.0.0.1:0", "--metrics-web-config", badWebCfg}, env: base,
			wantErr: "metrics-web-config " + badWebCfg + ": "},
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

// TestDeepstreamAppOptions: each of deepstream-app's own options is accepted, never
// refused: passed on to the engine, ignored with a sentence for the log, or answered.
func TestDeepstreamAppOptions(t *testing.T) {
	dir, cfg, eng := settingsFiles(t)
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
