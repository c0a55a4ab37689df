// Command ds-supervisor runs one always-on analysis instance: it starts the C engine,
// keeps the WebSocket link to FastAPI, owns the camera and file queues, and reports
// events, logs, status and metrics. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/logs"
	"github.com/cityeyelab/ds-analysis/go/internal/metrics"
	"github.com/cityeyelab/ds-analysis/go/internal/supervisor"
	"github.com/cityeyelab/ds-analysis/go/internal/wsauth"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0"

// Exit statuses of main's own; the others are supervisor.Run's (supervisor.ExitOK …).
// FastAPI restarts an instance that exits non-zero.
const (
	exitSettings = 2
	// exitRunning: another supervisor holds this APP_ID's instance dir. A status of its
	// own, so supervisord's exitcodes or systemd's RestartPreventExitStatus= can tell it
	// from bad settings (2) and from statuses 3 and 4 of supervisor.Run.
	exitRunning = 5
)

func main() {
	os.Exit(run())
}

func run() int {
	start := time.Now()
	if os.Getenv("GOGC") == "" {
		// The heap is mostly the file queues plus short-lived large replies (a full
		// analysis_status is ~0.6 MB with 10,000 queued files): collecting at +50 %
		// instead of +100 % keeps RSS near 30 MB under that load for little CPU.
		debug.SetGCPercent(50)
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	s, err := parseSettings(instance.StripTag(os.Args)[1:], os.Getenv, self)
	switch {
	case errors.Is(err, errHelp):
		usage(os.Stdout)
		return supervisor.ExitOK
	case errors.Is(err, errVersion):
		fmt.Println("ds-supervisor", version)
		return supervisor.ExitOK
	case errors.Is(err, errVersionAll):
		printVersions(os.Stdout, s.Engine)
		return supervisor.ExitOK
	case err != nil:
		fmt.Fprintf(os.Stderr, "ds-supervisor: %v\n", err)
		return exitSettings
	}

	// pgrep -f "APP_ID=<id>" matches command lines, and an environment assignment is not
	// part of one: re-exec with the tag as an argument so the watchdog finds us.
	if !instance.HasTag(os.Args, s.AppID) {
		if err := instance.Reexec(s.AppID); err != nil {
			fmt.Fprintf(os.Stderr, "ds-supervisor: re-exec with the APP_ID tag: %v\n", err)
			return supervisor.ExitFatal
		}
	}
	_ = instance.SetProcessName(s.AppID)
	// The re-exec above kept the environment as it came (the token must survive it);
	// from here on the token lives in s.Auth only, so that the engine and every other
	// child get an environment without it. (The kernel's copy of this process's
	// initial environment, /proc/<pid>/environ, still holds what the launcher gave:
	// DS_WS_TOKEN_FILE keeps the token out of it too.)
	os.Unsetenv("DS_WS_TOKEN")

	dir, err := instance.Open(s.InstanceRoot, s.AppID)
	if err != nil {
		fmt.Fprintf(os.Stderr, "ds-supervisor: %v\n", err)
		if errors.Is(err, instance.ErrAlreadyRunning) {
			return exitRunning
		}
		return exitSettings
	}
	defer dir.Close()
	if err := dir.WritePID("supervisor", os.Getpid()); err != nil {
		fmt.Fprintf(os.Stderr, "ds-supervisor: %v\n", err)
		return supervisor.ExitFatal
	}

	lg, err := logs.Open(logs.Options{
		Root: s.LogRoot, AppID: s.AppID, PID: os.Getpid(), Start: start, LiveLevel: s.LiveLevel,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ds-supervisor: logs: %v\n", err)
		return exitSettings
	}
	defer lg.Close()
	log := lg.Logger().Level(s.LogLevel)
	log.Info().Str("config", s.ConfigPath).Str("engine", s.Engine).
		Str("ws_url", redactURL(s.WSURL)).Str("version", version).Str("instance_dir", dir.Path()).
		Str("log_path", lg.Path()).Strs("engine_args", s.EngineArgs).
		Str("ws_token", tokenSource(s.Auth)).Str("ws_ca_file", s.Auth.CAFile).
		Str("ws_client_cert", s.Auth.ClientCert).Msg("starting")
	for _, m := range s.Ignored {
		log.Warn().Msg(m)
	}
	if s.Auth.HasToken() && strings.HasPrefix(s.WSURL, "ws://") {
		log.Warn().Msg("the bearer token goes over ws:// without TLS: anyone on the path can read it; use wss://")
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	stats, code := serveMetrics(ctx, s, log)
	if code != supervisor.ExitOK {
		return code
	}
	// After the first signal the default action is back: a second one ends a shutdown
	// that hangs.
	context.AfterFunc(ctx, stop)

	startCtx, cancel := context.WithTimeout(ctx, s.EngineStartTimeout)
	eng, err := engine.Start(startCtx, engine.Config{
		Binary:       s.Engine,
		ConfigPath:   s.ConfigPath,
		Args:         s.EngineArgs,
		SocketPath:   dir.SocketPath(),
		WorkDir:      s.EngineWorkDir,
		Output:       lg.EngineWriter(),
		StartTimeout: s.EngineStartTimeout,
		Log:          log,
	})
	cancel()
	if err != nil {
		log.Error().Err(err).Msg("engine did not start")
		fmt.Fprintf(os.Stderr, "ds-supervisor: engine: %v\n", err)
		if ctx.Err() != nil {
			return supervisor.ExitOK
		}
		return supervisor.ExitFatal
	}
	_ = dir.WritePID("engine", eng.PID())
	hello := eng.Hello()
	log.Info().Int("engine_pid", eng.PID()).Str("engine", hello.Engine).Str("engine_version", hello.Version).
		Int("streams", hello.Streams).Ints("gpu_ids", hello.GPUIDs).Msg("engine ready")

	// A restarted engine is started like the first one; Run bounds the wait by
	// cancelling ctx.
	restart := func(ctx context.Context) (supervisor.Engine, error) {
		ctx, cancel := context.WithTimeout(ctx, s.EngineStartTimeout)
		defer cancel()
		e, err := engine.Start(ctx, eng.Config())
		if err != nil {
			return nil, err
		}
		return e, nil
	}

	sampler := metrics.NewSampler(hello.GPUIDs)
	defer sampler.Close()

	code = supervisor.Run(ctx, supervisor.Options{
		AppID:        s.AppID,
		ConfigPath:   s.ConfigPath,
		Version:      version,
		Start:        start,
		StopTimeout:  s.EngineStopTimeout,
		Restarts:     s.EngineRestarts,
		Resume:       s.Resume,
		StallTimeout: s.stallTimeout(),
		Link: link.Config{
			URL:          s.WSURL,
			AckTimeout:   s.AckTimeout,
			PingInterval: s.HeartbeatInterval,
			PingTimeout:  s.HeartbeatTimeout,
			BackoffMin:   s.BackoffMin,
			BackoffMax:   s.BackoffMax,
			Credentials: func() (http.Header, *tls.Config, error) {
				cr, err := s.Auth.Load()
				return cr.Header, cr.TLS, err
			},
			Log: log,
		},
	}, supervisor.Deps{
		Engine:  eng,
		Restart: restart,
		Hello:   hello,
		Logs:    lg,
		Log:     log,
		Metrics: sampler,
		Dir:     dir,
		Stats:   stats,
	})
	dir.RemovePID("engine")
	log.Info().Int("exit_code", code).Msg("exiting")
	return code
}

// tokenSource says where the bearer token comes from, for the log: never the token.
func tokenSource(a wsauth.Config) string {
	switch {
	case a.TokenFile != "":
		return "file " + a.TokenFile
	case a.Token != "":
		return "DS_WS_TOKEN"
	}
	return "none"
}

// redactURL is the URL for the log, without a password it may carry.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		return u.Redacted()
	}
	return s
}

// printVersions answers --version-all: the supervisor's version, then what the engine
// prints for its own --version-all (deepstream-app: the DeepStream SDK and its
// libraries). An engine that cannot say is reported on one line, not as a failure.
func printVersions(w io.Writer, engineBin string) {
	fmt.Fprintf(w, "ds-supervisor %s (%s)\n", version, runtime.Version())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, engineBin, "--version-all").Output()
	w.Write(out)
	if err != nil {
		fmt.Fprintf(w, "engine %s --version-all: %v\n", engineBin, err)
	}
}
