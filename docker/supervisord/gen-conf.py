#!/usr/bin/env python3
"""Write a supervisord config with one [program:ds-<app_id>] per instance.

    gen-conf.py --config <deepstream-app config> [options] APP_ID[:CONFIG] ...

The second control path of spec §2.2 (5): supervisord inside the container runs the
instances and FastAPI drives them with supervisorctl or its XML-RPC interface
(startProcess / stopProcess / getProcessInfo). `make supervisord-conf APP_IDS="a b c"
CONFIG=…` calls this script; docker/README.md shows the whole setup.

Why each program setting is what it is (the exit statuses are README.md's table):
- exitcodes=0,2,4,5 with autorestart=unexpected: 0 (clean stop: terminate_app, SIGTERM),
  2 (bad settings), 4 (FastAPI refused the handshake) and 5 (another supervisor already
  runs with this APP_ID) would fail the same way again, so they are not restarted; 3 (the
  engine died with no restart left), 1 (other fatal error) and a death by signal are.
- startsecs: supervisord judges exitcodes only for a process that lived startsecs. One
  that exits sooner (bad settings and "already running" exit within milliseconds,
  whatever their status) is a failed start: retried startretries times with a growing
  delay (1 s, 2 s, …), then FATAL — not restarted in a loop.
- stopsignal=TERM to the supervisor alone (stopasgroup=false): it stops its engine itself
  within DS_ENGINE_STOP_TIMEOUT, sends app_terminated and exits 0. stopwaitsecs leaves it
  that long plus a margin before supervisord sends SIGKILL to the program's process group
  (killasgroup=true: also what a wrapper command started); the engine, in a process group
  of its own, dies with its supervisor by PR_SET_PDEATHSIG.
- stdout/stderr: the instance writes its own log under DS_LOG_ROOT; what is left on its
  stdout/stderr is a startup error line (why a program went FATAL), kept small in
  <log dir>/ds-<app_id>.out, readable with `supervisorctl tail ds-<app_id>`.
- APP_ID is set in `environment=`, exactly as `APP_ID=<id> deepstream-app …` would; the
  supervisor re-executes itself in place (same pid, which supervisord keeps watching)
  with APP_ID=<id> as its first argument, so `pgrep -f "APP_ID=<id>"` finds it here too.
"""
from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import sys
from typing import Dict, List, Optional, Tuple

PROGRAM_PREFIX = "ds-"
# The supervisor's own rule for APP_ID (go/internal/instance ValidateID).
APP_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Exit statuses that are not restarted: README.md, "Exit statuses".
EXPECTED_EXIT_CODES = "0,2,4,5"
# The supervisor's default --engine-stop-timeout, used when DS_ENGINE_STOP_TIMEOUT is unset.
DEFAULT_ENGINE_STOP_TIMEOUT = "5s"
STOP_MARGIN_S = 10  # link shutdown and app_terminated after the engine stopped
DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Error(Exception):
    pass


def go_duration_s(text: str) -> float:
    """Seconds in a Go duration ("15s", "1m30s", "500ms"), as the supervisor parses it."""
    pos, total = 0, 0.0
    for mt in DURATION_RE.finditer(text):
        if mt.start() != pos:
            break
        total += float(mt.group(1)) * UNITS[mt.group(2)]
        pos = mt.end()
    if pos != len(text) or not text:
        raise Error(f"engine stop timeout {text!r}: not a duration like 15s or 1m30s")
    return total


def ini_value(text: str, what: str) -> str:
    """text as a supervisord option value: one line, no inline comment, % doubled
    (supervisord expands %(name)s in values)."""
    if "\n" in text or "\r" in text:
        raise Error(f"{what}: a line break cannot be written into supervisord's config")
    if re.search(r"\s[;#]", text):
        raise Error(f"{what}: ' ;' or ' #' would start a comment in supervisord's config")
    return text.replace("%", "%%")


def env_value(key: str, value: str) -> str:
    """KEY="value" for environment=: supervisord splits it with shlex in non-POSIX mode
    (no escapes) and strips quote characters from both ends of the value."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
        raise Error(f"environment name {key!r} is not a valid variable name")
    if '"' in value or value.endswith("'") or value.startswith("'"):
        raise Error(f"{key}: a value with a double quote (or one that starts or ends with a "
                    f"single quote) cannot be written into supervisord's environment=")
    return f'{key}="{ini_value(value, key)}"'


def parse_instances(items: List[str], default_config: Optional[str]) -> List[Tuple[str, str]]:
    out, seen = [], set()
    for item in items:
        app_id, sep, config = item.partition(":")
        config = config if sep else (default_config or "")
        if not APP_ID_RE.match(app_id):
            raise Error(f"APP_ID {app_id!r}: use 1-64 of A-Z a-z 0-9 . _ -")
        if app_id in seen:
            raise Error(f"APP_ID {app_id!r} given twice")
        if not config:
            raise Error(f"{app_id}: no config (give --config, or {app_id}:<config>)")
        seen.add(app_id)
        # Absolute: supervisord's working directory is not the generator's, and
        # app_ready.config_path reports the path exactly as the program was given it.
        out.append((app_id, os.path.abspath(config)))
    if not out:
        raise Error("no APP_ID given")
    return out


def render(args: argparse.Namespace, env: Dict[str, str]) -> str:
    instances = parse_instances(args.app_ids, args.config)
    run_dir = os.path.abspath(args.run_dir)
    socket = os.path.abspath(args.socket or os.path.join(run_dir, "supervisor.sock"))
    stop_timeout = args.engine_stop_timeout or env.get("DS_ENGINE_STOP_TIMEOUT") \
        or DEFAULT_ENGINE_STOP_TIMEOUT
    stopwaitsecs = math.ceil(go_duration_s(stop_timeout)) + STOP_MARGIN_S
    log_dir = args.log_dir or env.get("DS_LOG_ROOT", "")
    extra_env: List[Tuple[str, str]] = []
    for kv in args.env:
        key, sep, value = kv.partition("=")
        if not sep:
            raise Error(f"--env {kv!r}: want KEY=VALUE")
        if key == "APP_ID":
            raise Error("--env APP_ID: each program sets its own APP_ID")
        extra_env.append((key, value))

    v = ini_value
    lines = [
        "; supervisord config for ds-analysis instances, written by docker/supervisord/gen-conf.py.",
        f"; Start:   mkdir -p {run_dir} && supervisord -c <this file>   (stays in the foreground)",
        "; Control: supervisorctl -c <this file> status | start ds-<id> | stop ds-<id>,",
        f";          or XML-RPC (supervisor.startProcess …) at unix://{socket}"
        + (f" or http://{args.inet}/RPC2" if args.inet else ""),
        "",
        "[unix_http_server]",
        f"file={v(socket, 'socket')}",
        "chmod=0700",
        "",
    ]
    if args.inet:
        host, _, port = args.inet.rpartition(":")
        if not host or not port.isdigit():
            raise Error(f"--inet {args.inet!r}: want HOST:PORT, e.g. 127.0.0.1:9001")
        lines += ["[inet_http_server]", f"port={v(args.inet, '--inet')}"]
        if args.inet_auth:
            user, sep, password = args.inet_auth.partition(":")
            if not sep or not user:
                raise Error("--inet-auth: want USER:PASSWORD")
            lines += [f"username={v(user, 'user')}", f"password={v(password, 'password')}"]
        lines.append("")
    lines += [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={v(os.path.join(run_dir, 'supervisord.log'), '--run-dir')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=3",
        f"pidfile={v(os.path.join(run_dir, 'supervisord.pid'), '--run-dir')}",
        f"childlogdir={v(run_dir, '--run-dir')}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{v(socket, 'socket')}",
        "",
    ]
    command_words = shlex.split(args.command)
    if not command_words:
        raise Error("--command is empty")
    if "/" in command_words[0]:  # a bare name is looked up on supervisord's PATH
        command_words[0] = os.path.abspath(command_words[0])
    for app_id, config in instances:
        program = PROGRAM_PREFIX + app_id
        command = " ".join(shlex.quote(w) for w in command_words + ["-c", config])
        environment = [("APP_ID", app_id)]
        if args.ws_url:
            environment.append(("DS_WS_URL", args.ws_url))
        environment += extra_env
        out = (v(os.path.join(os.path.abspath(log_dir), f"{program}.out"), "--log-dir")
               if log_dir else "AUTO")
        lines += [
            f"[program:{program}]",
            f"command={v(command, f'{app_id} command')}",
            "environment=" + ",".join(env_value(k, val) for k, val in environment),
            f"autostart={'true' if args.autostart else 'false'}",
            "autorestart=unexpected",
            f"exitcodes={EXPECTED_EXIT_CODES}",
            f"startsecs={args.startsecs}",
            f"startretries={args.startretries}",
            "stopsignal=TERM",
            f"stopwaitsecs={stopwaitsecs}",
            "stopasgroup=false",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={out}",
            "stdout_logfile_maxbytes=1MB",
            "stdout_logfile_backups=1",
            "",
        ]
    return "\n".join(lines)


def main(argv: List[str]) -> int:
    p = argparse.ArgumentParser(
        prog="gen-conf.py", description="Write a supervisord config, one program per APP_ID.")
    p.add_argument("app_ids", nargs="*", metavar="APP_ID[:CONFIG]",
                   help="instance ids; :CONFIG gives one its own deepstream-app config")
    p.add_argument("--config", help="deepstream-app config of every instance without :CONFIG")
    p.add_argument("--ws-url", help="DS_WS_URL of the instances (default: the supervisor's, "
                   "or supervisord's environment)")
    p.add_argument("--command", default="deepstream-app",
                   help="the supervisor executable and options before -c (default: "
                   "deepstream-app, its name in the image)")
    p.add_argument("--out", help="write here instead of stdout")
    p.add_argument("--run-dir", default="/tmp/ds-supervisord",
                   help="socket, pid file and supervisord's own log (default %(default)s)")
    p.add_argument("--socket", help="unix socket of the XML-RPC interface "
                   "(default <run-dir>/supervisor.sock)")
    p.add_argument("--inet", metavar="HOST:PORT",
                   help="also serve XML-RPC over TCP, e.g. 127.0.0.1:9001 for a FastAPI "
                   "outside the container (host network)")
    p.add_argument("--inet-auth", metavar="USER:PASSWORD", help="basic auth for --inet")
    p.add_argument("--log-dir", help="where ds-<id>.out goes (default $DS_LOG_ROOT, else "
                   "supervisord's childlogdir)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                   help="more environment for every instance (repeatable)")
    p.add_argument("--engine-stop-timeout",
                   help="the instances' DS_ENGINE_STOP_TIMEOUT, for stopwaitsecs (default "
                   f"$DS_ENGINE_STOP_TIMEOUT, else {DEFAULT_ENGINE_STOP_TIMEOUT})")
    p.add_argument("--startsecs", type=int, default=10,
                   help="seconds a start must last to count as started (default %(default)s)")
    p.add_argument("--startretries", type=int, default=3,
                   help="retries of a failed start before FATAL (default %(default)s)")
    p.add_argument("--autostart", action="store_true",
                   help="start every program with supervisord (default: FastAPI starts them)")
    args = p.parse_args(argv)
    if args.startsecs < 1 or args.startretries < 0:
        p.error("--startsecs must be >= 1 (0 would restart a failing start in a tight loop) "
                "and --startretries >= 0")
    try:
        text = render(args, dict(os.environ))
    except Error as exc:
        print(f"gen-conf.py: {exc}", file=sys.stderr)
        return 2
    if args.out:
        tmp = args.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, args.out)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
