package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/cityeyelab/ds-analysis/go/internal/engine"
	"github.com/cityeyelab/ds-analysis/go/internal/instance"
	"github.com/cityeyelab/ds-analysis/go/internal/link"
	"github.com/cityeyelab/ds-analysis/go/internal/promexport"
	"github.com/cityeyelab/ds-analysis/go/internal/supervisor"
	"github.com/cityeyelab/ds-analysis/go/internal/wsauth"
)

// minStallTimeout: the watchdog reads the frame counts once a second, so a shorter
// timeout would judge a file on one or two readings.
const minStallTimeout = 2 * time.Second

// defaultLogRoot is the log root the specification names (§2.1).
const defaultLogRoot = "/opt/nvidia/deepstream/deepstream/cityeyelab/vmnt/DeepStream-Yolo/logs"

// settings is everything the supervisor needs to start, from flags, env and defaults
// (flag > env > default).
type settings struct {
	AppID         string
	ConfigPath    string // exactly as given on the command line
	WSURL         string
	Engine        string
	EngineWorkDir string // absolute
	LogRoot       string
	InstanceRoot  string
	LogLevel      zerolog.Level
	LiveLevel     zerolog.Level

	HeartbeatInterval  time.Duration
	HeartbeatTimeout   time.Duration
	BackoffMin         time.Duration
	BackoffMax         time.Duration
	AckTimeout         time.Duration
	EngineStartTimeout time.Duration
	EngineStopTimeout  time.Duration
	// EngineRestarts is the restart budget per supervisor.DefaultRestartWindow (0:
	// an engine crash ends the instance).
	EngineRestarts int
	// StallTimeout is how long a playing file's frames may stand still before its slot
	// is stopped (the frame-progress watchdog); 0: off.
	StallTimeout time.Duration
	// Resume takes over the queues of a previous process that did not stop cleanly.
	Resume bool
	// MetricsAddr is host:port of the Prometheus exporter; "" turns it off.
	MetricsAddr string
	// MetricsWebConfig is the exporter's web configuration file (exporter-toolkit
	// format: TLS, client CA, basic-auth users); "" serves plain HTTP.
	MetricsWebConfig string
	// Auth is what the link presents to FastAPI on each connection (token, CA, client
	// certificate); its files are read again at every attempt.
	Auth wsauth.Config
	// EngineArgs are deepstream-app options passed on to the engine after -c <config>
	// (-t, GStreamer's --gst-*; both engines parse them).
	EngineArgs []string
	// Ignored says, one sentence each, which deepstream-app options were accepted but
	// have no effect here; main logs them.
	Ignored []string
}

// errHelp, errVersion and errVersionAll are not failures: main prints and exits 0.
var (
	errHelp       = errors.New("help requested")
	errVersion    = errors.New("version requested")
	errVersionAll = errors.New("all versions requested")
)

// option describes one setting: its flag names, env variable, default and doc.
type option struct {
	names []string
	env   string
	def   string
	doc   string
}

var options = []option{
	{[]string{"c", "config", "cfg-file"}, "", "", "deepstream-app config file (required)"},
	{[]string{"ws-url"}, "DS_WS_URL", "ws://127.0.0.1:8000/ws", "FastAPI WebSocket URL"},
	{[]string{"engine"}, "DS_ENGINE", "", "engine executable (default: ds-gst-engine beside this executable)"},
	{[]string{"engine-workdir"}, "DS_ENGINE_WORKDIR", "", "engine working directory (default: the config file's directory)"},
	{[]string{"log-root"}, "DS_LOG_ROOT", defaultLogRoot, "folder for the per-instance log folders"},
	{[]string{"instance-root"}, "DS_INSTANCE_ROOT", instance.DefaultRoot, "parent of the instance dir <root>/<APP_ID>"},
	{[]string{"log-level"}, "DS_LOG_LEVEL", "info", "lowest level written to the log file (debug|info|warn|error)"},
	{[]string{"live-log-level"}, "DS_LIVE_LOG_LEVEL", "warn", "lowest level streamed to FastAPI as log events (debug|info|warn|error|disabled)"},
	{[]string{"heartbeat-interval"}, "DS_HEARTBEAT_INTERVAL", link.DefaultPingInterval.String(), "WebSocket ping interval"},
	{[]string{"heartbeat-timeout"}, "DS_HEARTBEAT_TIMEOUT", link.DefaultPingTimeout.String(), "pong deadline; a missed pong drops the connection"},
	{[]string{"backoff-min"}, "DS_BACKOFF_MIN", link.DefaultBackoffMin.String(), "reconnect delay ceiling after the first, immediate attempt (doubles per failure)"},
	{[]string{"backoff-max"}, "DS_BACKOFF_MAX", link.DefaultBackoffMax.String(), "reconnect delay cap"},
	{[]string{"ack-timeout"}, "DS_ACK_TIMEOUT", link.DefaultAckTimeout.String(), "wait for execute_ack before reconnecting"},
	{[]string{"engine-start-timeout"}, "DS_ENGINE_START_TIMEOUT", "600s", "wait for the engine's ready (model loading)"},
	{[]string{"engine-stop-timeout"}, "DS_ENGINE_STOP_TIMEOUT", engine.DefaultStopTimeout.String(), "graceful engine stop before SIGKILL"},
	{[]string{"engine-restarts"}, "DS_ENGINE_RESTARTS", "3", fmt.Sprintf("engine restarts allowed per %.0f minutes; 0: a crash ends the instance (exit 3)", supervisor.DefaultRestartWindow.Minutes())},
	{[]string{"ws-token-file"}, "DS_WS_TOKEN_FILE", "", "file holding the bearer token sent on each WebSocket upgrade (Authorization: Bearer …), read again at every connection attempt (default: none)"},
	{[]string{"ws-ca-file"}, "DS_WS_CA_FILE", "", "PEM bundle of CAs trusted for a wss:// server besides the system roots, read at every attempt (default: system roots only)"},
	{[]string{"ws-client-cert"}, "DS_WS_CLIENT_CERT", "", "PEM client certificate (chain) for mutual TLS with a wss:// server, read at every attempt (default: none)"},
	{[]string{"ws-client-key"}, "DS_WS_CLIENT_KEY", "", "PEM private key of --ws-client-cert (default: none)"},
	{[]string{"stall-timeout"}, "DS_STALL_TIMEOUT", supervisor.DefaultStallTimeout.String(), "a playing file without a new frame for this long is stopped and fails; a second stall in a row restarts the engine; 0: off"},
	{[]string{"metrics-addr"}, "DS_METRICS_ADDR", "", "serve Prometheus /metrics, /healthz and /readyz on host:port, e.g. 127.0.0.1:9101 (default: off)"},
	{[]string{"metrics-web-config"}, "DS_METRICS_WEB_CONFIG", "", "exporter-toolkit web configuration file for the metrics port: TLS, client CA, basic-auth users with bcrypt hashes (default: plain HTTP)"},
}

// usage writes the --help text.
func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: APP_ID=<id> ds-supervisor -c <config> [options]\n\n")
	fmt.Fprintf(w, "Runs one analysis instance: the engine, the WebSocket link to FastAPI, the queues.\n\nOptions (flag, env, default):\n")
	for _, o := range options {
		names := make([]string, len(o.names))
		for i, n := range o.names {
			names[i] = "--" + n
			if len(n) == 1 {
				names[i] = "-" + n
			}
		}
		env := o.env
		if env == "" {
			env = "-"
		}
		fmt.Fprintf(w, "  %-34s %-24s %s", strings.Join(names, ", "), env, o.doc)
		if o.def != "" {
			fmt.Fprintf(w, " [%s]", o.def)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-", "APP_ID", "instance id (required): [A-Za-z0-9._-], 1-64 chars")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-", "DS_WS_TOKEN", "the bearer token itself, instead of --ws-token-file (environment only: never on a command line; not passed to the engine)")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "--resume", "DS_RESUME=1", "take over the queues of a previous process with this APP_ID that did not stop cleanly")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-t, --tiledtext", "-", "passed to the engine (deepstream-app: labels in tiled mode)")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "--gst-*", "-", "GStreamer's options, passed to the engine (--gst-version, --gst-debug-help: ignored)")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-i, --input-uri", "-", "ignored with a log line: slots play what start_analysis sends")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-h, --help, --help-all, --help-gst", "-", "print this and exit")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "-v, --version", "-", "print the supervisor's version and exit")
	fmt.Fprintf(w, "  %-34s %-24s %s\n", "--version-all", "-", "print the supervisor's and the engine's versions (engine --version-all) and exit")
}

// gstValued are GStreamer's command-line options that take a value; the others in
// gstPassed are switches. gstPrinting print and exit, which would end the engine's start:
// they are ignored.
var (
	gstValued   = map[string]bool{"gst-debug-level": true, "gst-debug": true, "gst-debug-color-mode": true, "gst-plugin-path": true, "gst-plugin-load": true}
	gstPassed   = map[string]bool{"gst-fatal-warnings": true, "gst-debug-no-color": true, "gst-debug-disable": true, "gst-plugin-spew": true, "gst-disable-segtrap": true, "gst-disable-registry-update": true, "gst-disable-registry-fork": true}
	gstPrinting = map[string]bool{"gst-version": true, "gst-debug-help": true}
)

// splitGstArgs takes GStreamer's --gst-* options out of args (as GOption reads them:
// --gst-x=v or --gst-x v), up to a "--" terminator. Known ones go to the engine; the
// rest are named in ignored.
func splitGstArgs(args []string) (rest, engine, ignored []string) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if !strings.HasPrefix(a, "--gst-") {
			rest = append(rest, a)
			continue
		}
		name, _, hasValue := strings.Cut(a[2:], "=")
		switch {
		case gstValued[name]:
			if !hasValue && i+1 < len(args) {
				i++
				a += "=" + args[i]
			}
			engine = append(engine, a)
		case gstPassed[name] && !hasValue:
			engine = append(engine, a)
		case gstPrinting[name]:
			ignored = append(ignored, fmt.Sprintf("%s ignored: it would make the engine print and exit", a))
		default:
			ignored = append(ignored, fmt.Sprintf("%s ignored: not a GStreamer option the engines know", a))
		}
	}
	return rest, engine, ignored
}

// parseSettings reads flags from args and env through getenv. Any error is meant to be
// printed as one line, followed by exit status 2.
func parseSettings(args []string, getenv func(string) string, self string) (settings, error) {
	args, engineArgs, ignored := splitGstArgs(args)
	fs := flag.NewFlagSet("ds-supervisor", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	values := make([]string, len(options))
	for i, o := range options {
		values[i] = o.def
		if o.env != "" {
			if v := getenv(o.env); v != "" {
				values[i] = v
			}
		}
		for _, n := range o.names {
			fs.StringVar(&values[i], n, values[i], o.doc)
		}
	}
	help := fs.Bool("help", false, "")
	for _, n := range []string{"h", "help-all", "help-gst"} {
		fs.BoolVar(help, n, false, "")
	}
	version := fs.Bool("version", false, "")
	fs.BoolVar(version, "v", false, "")
	versionAll := fs.Bool("version-all", false, "")
	// deepstream-app's own options: -t changes what its OSD draws, so the engine gets
	// it; -i names sources, which here come from start_analysis.
	tiled := fs.Bool("tiledtext", false, "")
	fs.BoolVar(tiled, "t", false, "")
	var inputURIs []string
	for _, n := range []string{"i", "input-uri"} {
		fs.Func(n, "", func(v string) error { inputURIs = append(inputURIs, v); return nil })
	}
	resumeEnv, err := strconv.ParseBool(cmp.Or(getenv("DS_RESUME"), "0"))
	if err != nil {
		return settings{}, fmt.Errorf("DS_RESUME %q: want 1 or 0", getenv("DS_RESUME"))
	}
	resume := fs.Bool("resume", resumeEnv, "")
	if err := fs.Parse(args); err != nil {
		return settings{}, err
	}
	if *help {
		return settings{}, errHelp
	}
	if *versionAll {
		// Only the engine is needed, to ask it for its versions.
		return settings{Engine: cmp.Or(values[engineOption()], filepath.Join(filepath.Dir(self), "ds-gst-engine"))}, errVersionAll
	}
	if *version {
		return settings{}, errVersion
	}
	if *tiled {
		engineArgs = append([]string{"-t"}, engineArgs...)
	}
	for _, u := range inputURIs {
		ignored = append(ignored, fmt.Sprintf("-i %s ignored: stream slots play what start_analysis sends", u))
	}
	if fs.NArg() > 0 {
		return settings{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	get := func(name string) string {
		for i, o := range options {
			if o.names[0] == name {
				return values[i]
			}
		}
		panic("unknown option " + name)
	}

	s := settings{
		AppID:        getenv("APP_ID"),
		ConfigPath:   get("c"),
		WSURL:        get("ws-url"),
		Engine:       get("engine"),
		LogRoot:      get("log-root"),
		InstanceRoot: get("instance-root"),
		Resume:       *resume,
		MetricsAddr:  get("metrics-addr"),
		EngineArgs:   engineArgs,
		Ignored:      ignored,

		MetricsWebConfig: get("metrics-web-config"),
	}
	if s.AppID == "" {
		return s, errors.New("APP_ID is not set: start as APP_ID=<id> ds-supervisor -c <config>")
	}
	if err := instance.ValidateID(s.AppID); err != nil {
		return s, fmt.Errorf("APP_ID %q: %w", s.AppID, err)
	}
	if s.ConfigPath == "" {
		return s, errors.New("no config file: pass -c <deepstream-app config>")
	}
	if st, err := os.Stat(s.ConfigPath); err != nil {
		return s, fmt.Errorf("config %s: %w", s.ConfigPath, err)
	} else if st.IsDir() {
		return s, fmt.Errorf("config %s: is a directory", s.ConfigPath)
	}
	u, err := url.Parse(s.WSURL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return s, fmt.Errorf("ws-url %q: want ws://host[:port]/path or wss://…", s.WSURL)
	}
	s.Auth = wsauth.Config{
		AppID:      s.AppID,
		Token:      wsauth.Secret(getenv("DS_WS_TOKEN")),
		TokenFile:  get("ws-token-file"),
		CAFile:     get("ws-ca-file"),
		ClientCert: get("ws-client-cert"),
		ClientKey:  get("ws-client-key"),
	}
	if err := s.Auth.Check(u.Scheme); err != nil {
		return s, err
	}
	// Read once now so that a missing file, a bad PEM or a key of another certificate
	// is a settings error at start; later attempts read the files again (rotation).
	if _, err := s.Auth.Load(); err != nil {
		return s, err
	}
	if s.Engine == "" {
		s.Engine = filepath.Join(filepath.Dir(self), "ds-gst-engine")
	}
	if st, err := os.Stat(s.Engine); err != nil {
		return s, fmt.Errorf("engine %s: %w", s.Engine, err)
	} else if st.IsDir() || st.Mode()&0o111 == 0 {
		return s, fmt.Errorf("engine %s: not an executable file", s.Engine)
	}
	if s.EngineWorkDir, err = engineWorkDir(get("engine-workdir"), s.ConfigPath); err != nil {
		return s, err
	}
	for _, p := range []struct{ name, v string }{{"log-root", s.LogRoot}, {"instance-root", s.InstanceRoot}} {
		if !filepath.IsAbs(p.v) {
			return s, fmt.Errorf("%s %q: must be an absolute path", p.name, p.v)
		}
	}
	for _, lv := range []struct {
		name string
		dst  *zerolog.Level
	}{{"log-level", &s.LogLevel}, {"live-log-level", &s.LiveLevel}} {
		v := strings.ToLower(get(lv.name))
		if v == "warning" {
			v = "warn"
		}
		if *lv.dst, err = zerolog.ParseLevel(v); err != nil || v == "" {
			return s, fmt.Errorf("%s %q: want debug, info, warn, error or disabled", lv.name, get(lv.name))
		}
	}
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"heartbeat-interval", &s.HeartbeatInterval},
		{"heartbeat-timeout", &s.HeartbeatTimeout},
		{"backoff-min", &s.BackoffMin},
		{"backoff-max", &s.BackoffMax},
		{"ack-timeout", &s.AckTimeout},
		{"engine-start-timeout", &s.EngineStartTimeout},
		{"engine-stop-timeout", &s.EngineStopTimeout},
	}
	for _, d := range durations {
		v, err := time.ParseDuration(get(d.name))
		if err != nil || v <= 0 {
			return s, fmt.Errorf("%s %q: want a positive duration such as 500ms or 5s", d.name, get(d.name))
		}
		*d.dst = v
	}
	if s.EngineRestarts, err = strconv.Atoi(get("engine-restarts")); err != nil || s.EngineRestarts < 0 {
		return s, fmt.Errorf("engine-restarts %q: want an integer ≥ 0", get("engine-restarts"))
	}
	if s.StallTimeout, err = time.ParseDuration(get("stall-timeout")); err != nil ||
		(s.StallTimeout != 0 && s.StallTimeout < minStallTimeout) {
		return s, fmt.Errorf("stall-timeout %q: want 0 (off) or a duration of at least %v, such as 20s",
			get("stall-timeout"), minStallTimeout)
	}
	if s.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(s.MetricsAddr); err != nil || port == "" {
			return s, fmt.Errorf("metrics-addr %q: want host:port such as 127.0.0.1:9101", s.MetricsAddr)
		}
	}
	if s.MetricsWebConfig != "" {
		if s.MetricsAddr == "" {
			return s, errors.New("metrics-web-config is set without metrics-addr: give the exporter an address")
		}
		if err := promexport.CheckWebConfig(s.MetricsWebConfig); err != nil {
			return s, fmt.Errorf("metrics-web-config %s: %w", s.MetricsWebConfig, err)
		}
	}
	if s.BackoffMin > s.BackoffMax {
		return s, fmt.Errorf("backoff-min %v is above backoff-max %v", s.BackoffMin, s.BackoffMax)
	}
	return s, nil
}

// stallTimeout is StallTimeout as supervisor.Options takes it: negative for off.
func (s settings) stallTimeout() time.Duration {
	if s.StallTimeout == 0 {
		return -1
	}
	return s.StallTimeout
}

// engineOption is the index of --engine in options.
func engineOption() int {
	for i, o := range options {
		if o.names[0] == "engine" {
			return i
		}
	}
	panic("no engine option")
}

// engineWorkDir resolves the engine's working directory. The default is the config
// file's directory because nvinfer saves a TensorRT engine it built through a custom
// engine-create function (DeepStream-Yolo) as <cwd>/model_b<N>_gpu<G>_<precision>.engine,
// while a relative model-engine-file resolves against the config's directory: only when
// the two agree does the next start load the engine instead of building it again.
func engineWorkDir(v, configPath string) (string, error) {
	if v == "" {
		v = filepath.Dir(configPath)
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		return "", fmt.Errorf("engine-workdir %q: %w", v, err)
	}
	if st, err := os.Stat(abs); err != nil {
		return "", fmt.Errorf("engine-workdir: %w", err)
	} else if !st.IsDir() {
		return "", fmt.Errorf("engine-workdir %s: not a directory", abs)
	}
	return abs, nil
}
