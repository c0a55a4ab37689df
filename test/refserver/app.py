"""Reference FastAPI server: launches instances (spec §2.2) and drives them over WebSocket
(spec §2.3).

Run it from the repository root:

    /usr/bin/python3 -m uvicorn refserver.app:app --app-dir test \
        --host 127.0.0.1 --port 8000 --ws websockets --ws-max-size 67108864

Instances connect to `ws://<host>:<port>/ws`. Operators, the demo and the end-to-end tests
use the small HTTP API below (README.md beside this package lists it). Settings come from
the environment (see `Settings`).

Over TLS, uvicorn does the TLS and the client certificates; the server checks bearer tokens
(auth.py) on the WebSocket route before accepting it:

    REFSERVER_WS_TOKENS_FILE=/etc/ds/tokens /usr/bin/python3 -m uvicorn refserver.app:app \
        --app-dir test --host 0.0.0.0 --port 8443 --ws websockets \
        --ssl-certfile server.pem --ssl-keyfile server.key \
        --ssl-ca-certs clients-ca.pem --ssl-cert-reqs 2     # mutual TLS: a client cert required

Instances then dial `wss://<host>:8443/ws` with DS_WS_CA_FILE (the server's CA),
DS_WS_CLIENT_CERT/DS_WS_CLIENT_KEY and DS_WS_TOKEN_FILE or DS_WS_TOKEN.
"""
from __future__ import annotations

import asyncio
import base64
import configparser
import contextlib
import json
import logging
import os
import shlex
import subprocess
import xmlrpc.client
from typing import Any, AsyncIterator, Dict, FrozenSet, List, Optional

from fastapi import Body, Depends, FastAPI, HTTPException, Query, Request, WebSocket
from pydantic import BaseModel, Field, ValidationError
from starlette.websockets import WebSocketDisconnect

from . import models as m
from .compat import dump, fastapi_app, pattern_field, validate
from . import supervisord as supd
from .auth import TokenTable, may_claim
from .journal import Journal
from .registry import InstanceRecord, Registry

log = logging.getLogger("refserver")

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Settings:
    """Server settings, read from the environment once at start.

    REFSERVER_DATA_DIR      records, journals and launch logs (default /tmp/refserver)
    REFSERVER_SUPERVISOR    the program an instance runs (default <repo>/bin/ds-supervisor;
                            in the DeepStream container: deepstream-app)
    REFSERVER_ENGINE        DS_ENGINE given to instances (default <repo>/bin/ds-gst-engine;
                            empty: not set)
    REFSERVER_LAUNCH_PREFIX words put before `bash -c "…"`, e.g.
                            `docker exec -d {docker_env} deepstream_container`
                            ({docker_env} becomes `-e K=V` for each instance variable)
    REFSERVER_EXEC_PREFIX   words put before pgrep/pkill (e.g. `docker exec deepstream_container`)
    REFSERVER_LAUNCH_MODE   exec (default: the spec's bash line above) or supervisord: start
                            and stop the program of each app_id over supervisord's XML-RPC
    REFSERVER_SUPERVISORD_URL      supervisord mode: unix:///…/supervisor.sock or
                            http://[user:password@]127.0.0.1:9001
    REFSERVER_SUPERVISORD_PROGRAM  supervisord mode: program name (default ds-{app_id}, the
                            name docker/supervisord/gen-conf.py gives)
    REFSERVER_ACCEPT_UNKNOWN  1: confirm an instance that has no launch record
    REFSERVER_REPLY_TIMEOUT   seconds to wait for a reply (default 10)
    REFSERVER_LAST_SEQ_LAG    drills only: under-report execute_ack.last_seq by this much
    REFSERVER_WS_TOKEN, REFSERVER_WS_TOKENS_FILE  bearer tokens the /ws route wants (auth.py);
                            an instance this server launches gets its token as DS_WS_TOKEN
                            in its environment (never on a command line)
    DS_LOG_ROOT, DS_INSTANCE_ROOT, DS_* timings, DS_WS_CA_FILE, DS_WS_CLIENT_CERT,
    DS_WS_CLIENT_KEY, DS_WS_TOKEN_FILE: passed on to launched instances. The REFSERVER_*
    variables are the server's own and are not.
    """

    def __init__(self) -> None:
        env = os.environ
        self.data_dir = os.path.abspath(env.get("REFSERVER_DATA_DIR", "/tmp/refserver"))
        self.supervisor = env.get("REFSERVER_SUPERVISOR",
                                  os.path.join(REPO_ROOT, "bin", "ds-supervisor"))
        self.engine = env.get("REFSERVER_ENGINE", os.path.join(REPO_ROOT, "bin", "ds-gst-engine"))
        self.launch_prefix = env.get("REFSERVER_LAUNCH_PREFIX", "")
        self.exec_prefix = shlex.split(env.get("REFSERVER_EXEC_PREFIX", ""))
        self.accept_unknown = env.get("REFSERVER_ACCEPT_UNKNOWN", "0") == "1"
        self.reply_timeout = float(env.get("REFSERVER_REPLY_TIMEOUT", "10"))
        # Drill only: report last_seq this much lower, so that instances resend messages
        # already recorded and the de-duplication by seq is exercised.
        self.last_seq_lag = int(env.get("REFSERVER_LAST_SEQ_LAG", "0"))
        self.tokens = TokenTable.from_env(env)
        self.launch_mode = env.get("REFSERVER_LAUNCH_MODE", "exec")
        self.supervisord: Optional[supd.Supervisord] = None
        if self.launch_mode == "supervisord":
            url = env.get("REFSERVER_SUPERVISORD_URL", "")
            if not url:
                raise ValueError("REFSERVER_LAUNCH_MODE=supervisord needs REFSERVER_SUPERVISORD_URL")
            self.supervisord = supd.Supervisord(
                url, env.get("REFSERVER_SUPERVISORD_PROGRAM", "ds-{app_id}"))
        elif self.launch_mode != "exec":
            raise ValueError(f"REFSERVER_LAUNCH_MODE {self.launch_mode!r}: want exec or supervisord")


def count_streams(config_path: str) -> Optional[int]:
    """Slots a deepstream-app config yields: enabled [sourceK] groups, a type=3 group
    counting num-sources. None when the file cannot be read here (e.g. inside a container)."""
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       inline_comment_prefixes=("#", ";"))
    try:
        with open(config_path, encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError):
        return None
    total = 0
    for section in parser.sections():
        if not (section.startswith("source") and section[6:].isdigit()):
            continue
        group = parser[section]
        if group.get("enable", "0").strip() != "1":
            continue
        if group.get("type", "").strip() == "3":
            try:
                total += max(1, int(group.get("num-sources", "1")))
            except ValueError:
                total += 1
        else:
            total += 1
    return total


# Instance variables that hold a secret: never on a command line, never in a record.
SECRET_ENV = frozenset({"DS_WS_TOKEN"})


def redact_env(env: Dict[str, str]) -> Dict[str, str]:
    """env as a record may show it: secrets replaced."""
    return {k: "[redacted]" if k in SECRET_ENV else v for k, v in env.items()}


class Connection:
    """One live WebSocket of an instance."""

    def __init__(self, ws: WebSocket, ready: m.AppReady) -> None:
        self.ws = ws
        self.ready = ready
        self.process_id = ready.process_id
        self.send_lock = asyncio.Lock()
        self.closed = False

    async def send_text(self, text: str) -> None:
        await self._send({"type": "websocket.send", "text": text})

    async def send_bytes(self, data: bytes) -> None:
        await self._send({"type": "websocket.send", "bytes": data})

    async def _send(self, message: Dict[str, Any]) -> None:
        async with self.send_lock:
            try:
                await self.ws.send(message)
            except Exception as exc:  # closed under us: the caller may retry after reconnect
                self.closed = True
                raise HTTPException(409, f"connection closed while sending: {exc}") from exc


class Hub:
    """Everything the server knows: launch records, journals, live connections and the
    requests waiting for their reply."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        os.makedirs(settings.data_dir, exist_ok=True)
        self.registry = Registry(os.path.join(settings.data_dir, "instances.json"))
        self.journal = Journal(os.path.join(settings.data_dir, "journal"))
        self.conns: Dict[str, Connection] = {}
        # Pending replies per instance, keyed by request_id: kept across reconnects because
        # the instance delivers a reply made while disconnected after the next handshake.
        self.pending: Dict[str, Dict[str, asyncio.Future]] = {}
        self.procs: Dict[str, subprocess.Popen] = {}
        self._reaper: Optional[asyncio.Task] = None
        self.supd = settings.supervisord
        self.supd_apps: set = set()  # app_ids whose program this server started
        self._supd_down = False  # logged once until supervisord answers again
        self._supd_calls = 0  # start/stop calls made: a poll that overlapped one is stale

    # ------------------------------------------------------------ launching (spec §2.2)

    def launch(self, req: "LaunchRequest", ws_url: str) -> InstanceRecord:
        s = self.settings
        if self.supd is not None and req.launch:
            return self.launch_supervisord(req)
        existing = self.registry.get(req.app_id)
        if existing and existing.status in ("launched", "running") and self._alive(existing):
            raise HTTPException(409, f"instance {req.app_id!r} is already running")
        streams = req.streams_count if req.streams_count is not None else count_streams(req.config_path)
        launch_dir = os.path.join(s.data_dir, "launch-logs")
        os.makedirs(launch_dir, exist_ok=True)
        log_path = os.path.join(launch_dir, f"{req.app_id}.log")
        inst_env = {"DS_WS_URL": req.ws_url or ws_url}
        if s.engine:
            inst_env["DS_ENGINE"] = s.engine
        for key in ("DS_LOG_ROOT", "DS_INSTANCE_ROOT", "DS_LIVE_LOG_LEVEL", "DS_HEARTBEAT_INTERVAL",
                    "DS_HEARTBEAT_TIMEOUT", "DS_BACKOFF_MIN", "DS_BACKOFF_MAX", "DS_ACK_TIMEOUT",
                    "DS_ENGINE_STOP_TIMEOUT", "DS_WS_CA_FILE", "DS_WS_CLIENT_CERT",
                    "DS_WS_CLIENT_KEY", "DS_WS_TOKEN_FILE"):
            if key in os.environ:
                inst_env[key] = os.environ[key]
        inst_env.update(req.env)
        if "DS_WS_TOKEN" not in inst_env and "DS_WS_TOKEN_FILE" not in inst_env:
            token = s.tokens.token_for(req.app_id)
            if token:
                inst_env["DS_WS_TOKEN"] = token
        # The spec's line: APP_ID=<id> <app> -c <config> > <log> 2>&1, run by bash in its
        # own session so the instance outlives this server.
        command = (f"APP_ID={shlex.quote(req.app_id)} {shlex.quote(s.supervisor)} "
                   f"-c {shlex.quote(req.config_path)} > {shlex.quote(log_path)} 2>&1")
        # A secret goes to docker exec by name only (`-e DS_WS_TOKEN`: docker takes the
        # value from its own environment), so that no command line carries it.
        docker_env = " ".join(f"-e {shlex.quote(k)}" if k in SECRET_ENV else
                              f"-e {shlex.quote(k + '=' + v)}" for k, v in inst_env.items())
        prefix = shlex.split(s.launch_prefix.replace("{docker_env}", docker_env))
        record = InstanceRecord(app_id=req.app_id, config_path=req.config_path,
                                streams_count=streams, log_path=log_path, status="launched",
                                ws_status="disconnected", env=redact_env(req.env))
        if req.launch:
            # The server's own settings (REFSERVER_*, its tokens among them) stay here.
            base_env = {k: v for k, v in os.environ.items() if not k.startswith("REFSERVER_")}
            proc = subprocess.Popen(prefix + ["bash", "-c", command],
                                    env={**base_env, **inst_env},
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            self.procs[req.app_id] = proc
            record.pid = proc.pid
            record.command = prefix + ["bash", "-c", command]
        else:
            record.status = "registered"
        self.registry.put(record)
        log.info("launched %s pid=%s", req.app_id, record.pid)
        return record

    def launch_supervisord(self, req: "LaunchRequest") -> InstanceRecord:
        """Spec §2.2 (5), second path: startProcess of the app_id's supervisord program.
        Its command, config and environment are in its [program] section; the record is
        written first so that the instance's app_ready finds it."""
        if req.env or req.ws_url:
            raise HTTPException(400, "launch mode supervisord: an instance's environment and "
                                     "DS_WS_URL are set in its supervisord [program] section")
        program = self.supd.program(req.app_id)
        streams = req.streams_count if req.streams_count is not None else count_streams(req.config_path)
        record = InstanceRecord(app_id=req.app_id, config_path=req.config_path,
                                streams_count=streams, status="launched",
                                ws_status="disconnected", command=["supervisord", program])
        self.registry.put(record)
        self.supd_apps.add(req.app_id)
        try:
            info = self.supervisord_rpc("start", req.app_id)  # no wait for startsecs: quick
        except HTTPException as exc:
            record.status, record.spawn_error = "fatal", str(exc.detail)
            self.registry.put(record)
            raise
        self._track(req.app_id, info)
        log.info("started supervisord program %s pid=%s", program, info.get("pid"))
        return self.registry.get(req.app_id)

    def supervisord_rpc(self, action: str, app_id: str) -> Dict[str, Any]:
        """start, stop or info of app_id's program (getProcessInfo after it). Blocking:
        stop waits up to stopwaitsecs, so the routes call it in a thread and then _track
        on the event loop (the registry is not shared with threads)."""
        if self.supd is None:
            raise HTTPException(400, "not in supervisord launch mode (REFSERVER_LAUNCH_MODE)")
        if action != "info":
            self._supd_calls += 1
        try:
            info = getattr(self.supd, action)(app_id)
        except xmlrpc.client.Fault as exc:
            code = 404 if exc.faultCode == supd.BAD_NAME else 502
            raise HTTPException(code, f"supervisord {action} {self.supd.program(app_id)}: "
                                      f"{exc.faultString}") from exc
        except supd.Error as exc:
            raise HTTPException(502, f"supervisord at {self.supd.url}: {exc}") from exc
        return info

    def _track(self, app_id: str, info: Dict[str, Any]) -> None:
        """Mirror supervisord's view of a program in the state record: a new pid is a new
        process (supervisord restarted it: autorestart, or a start), EXITED/STOPPED carry
        the exit status, FATAL the spawn error."""
        rec = self.registry.get(app_id)
        if rec is None:
            return
        before = dump(rec)
        state, pid = info.get("statename"), info.get("pid") or None
        rec.process_state = state
        if pid and pid != rec.pid:
            rec.pid, rec.exit_code, rec.exited_at, rec.spawn_error = pid, None, None, None
            if rec.process_id != pid:  # what status says was about the previous process
                rec.status = "launched"
        if state in ("EXITED", "STOPPED") and rec.exit_code is None and rec.pid:
            rec.exit_code, rec.exited_at = info.get("exitstatus"), m.now_iso()
            if rec.status not in ("crashed", "rejected"):
                rec.status = "exited"
        elif state == "FATAL":
            rec.status, rec.spawn_error = "fatal", info.get("spawnerr") or None
        if dump(rec) != before:
            self.registry.put(rec)

    async def _poll_supervisord(self) -> None:
        if self.supd is None or not self.supd_apps:
            return
        calls = self._supd_calls
        try:
            infos = await asyncio.to_thread(self.supd.all_info)
        except supd.Error as exc:
            if not self._supd_down:
                log.warning("supervisord at %s does not answer: %s", self.supd.url, exc)
            self._supd_down = True
            return
        self._supd_down = False
        if calls != self._supd_calls:
            return  # taken before a start or stop finished: the next poll is current
        for app_id in list(self.supd_apps):
            info = infos.get(self.supd.program(app_id))
            if info is not None:
                self._track(app_id, info)

    def _alive(self, rec: InstanceRecord) -> bool:
        proc = self.procs.get(rec.app_id)
        if proc is not None:
            return proc.poll() is None
        return rec.pid is not None and os.path.exists(f"/proc/{rec.pid}")

    async def reap_forever(self) -> None:
        """Notice launched processes that exited and record their exit status."""
        while True:
            for app_id, proc in list(self.procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                del self.procs[app_id]
                rec = self.registry.get(app_id)
                if rec:
                    rec.exit_code = code
                    if rec.status not in ("crashed", "rejected"):
                        rec.status = "exited"
                    rec.exited_at = m.now_iso()
                    self.registry.put(rec)
                    log.info("instance %s exited with %s", app_id, code)
            await self._poll_supervisord()
            await asyncio.sleep(0.1)

    def watchdog(self, app_id: str, action: str, sig: str = "TERM") -> Dict[str, Any]:
        """Spec §2.2-5: find or stop an instance by `pgrep/pkill -f "APP_ID=<id>"`."""
        tool = "pgrep" if action == "pgrep" else "pkill"
        argv = self.settings.exec_prefix + [tool]
        if tool == "pkill":
            argv.append(f"-{sig}")
        argv += ["-f", f"APP_ID={app_id}( |$)"]
        res = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        pids = [int(p) for p in res.stdout.split()] if tool == "pgrep" else []
        return {"argv": argv, "returncode": res.returncode, "pids": pids}

    # ------------------------------------------------------------ the WebSocket side

    def verify(self, ready: m.AppReady) -> m.ExecuteAck:
        """Check app_ready against the launch record (spec §2.3.1)."""
        rec = self.registry.get(ready.instance_id)

        def error(code: str, message: str, **kw: Any) -> m.ExecuteAck:
            return m.ExecuteAck(request_id=ready.request_id, instance_id=ready.instance_id,
                                status="error", error_code=code, error_message=message,
                                config_verified=kw.pop("config_verified", True), **kw)

        if rec is None:
            if not self.settings.accept_unknown:
                return error("UNKNOWN_INSTANCE",
                             f"No instance {ready.instance_id!r} was launched by this server",
                             config_verified=False, received_config=ready.config_path)
            rec = InstanceRecord(app_id=ready.instance_id, config_path=ready.config_path,
                                 streams_count=ready.streams_count, status="launched",
                                 ws_status="disconnected")
            self.registry.put(rec)
        if ready.config_path != rec.config_path:
            return error("CONFIG_MISMATCH", "Config path does not match the running instance",
                         config_verified=False, expected_config=rec.config_path,
                         received_config=ready.config_path)
        if rec.streams_count is not None and ready.streams_count != rec.streams_count:
            return error("STREAMS_COUNT_MISMATCH",
                         f"Instance reports {ready.streams_count} streams, "
                         f"the config yields {rec.streams_count}",
                         streams_count_verified=False, expected_config=rec.config_path,
                         received_config=ready.config_path)
        if ready.status != "ok":
            return error("APP_NOT_READY", f"app_ready status is {ready.status!r}",
                         expected_config=rec.config_path, received_config=ready.config_path)
        return m.ExecuteAck(request_id=ready.request_id, instance_id=ready.instance_id,
                            config_verified=True, streams_count_verified=True, status="confirmed",
                            last_seq=max(0, self.journal.last_seq(ready.instance_id, ready.process_id)
                                         - self.settings.last_seq_lag))

    async def serve(self, ws: WebSocket, allowed: Optional[FrozenSet[str]] = None) -> None:
        """One instance connection. `allowed`: the app_ids its token may claim (None: no
        token check), from the route's dependency, which refused bad tokens already."""
        await ws.accept()
        try:
            first = await asyncio.wait_for(ws.receive_text(), timeout=30)
        except (asyncio.TimeoutError, WebSocketDisconnect, KeyError, RuntimeError):
            await _close(ws, 1008)
            return
        obj: Any = None
        try:
            obj = json.loads(first)
            ready = validate(m.AppReady, obj)
        except (ValueError, ValidationError) as exc:
            ack = m.ExecuteAck(status="error", config_verified=False, error_code="BAD_APP_READY",
                               error_message=f"first message must be a valid app_ready: {exc}"[:500],
                               request_id=obj.get("request_id") if isinstance(obj, dict) else None)
            await ws.send_text(ack.to_wire())
            await _close(ws, 1008)
            return
        app_id = ready.instance_id
        claimed = ws.headers.get("x-ds-app-id")
        if not may_claim(allowed, app_id) or (allowed is not None and claimed not in (None, app_id)):
            log.warning("rejecting %s: its token is not valid for that app_id", app_id)
            ack = m.ExecuteAck(status="error", config_verified=False, request_id=ready.request_id,
                               instance_id=app_id, error_code="UNAUTHORIZED_INSTANCE",
                               error_message=f"the bearer token is not valid for instance {app_id!r}")
            await ws.send_text(ack.to_wire())
            await _close(ws, 1008)
            return
        # last_seq is what was recorded before this handshake: messages the instance wrote
        # just before the last connection died (seq below this app_ready's) get resent.
        ack = self.verify(ready)
        self.journal.record(app_id, ready.process_id, obj)
        rec = self.registry.get(app_id)
        if ack.status != "confirmed":
            log.warning("rejecting %s: %s", app_id, ack.error_message)
            await ws.send_text(ack.to_wire())
            if rec:
                rec.status, rec.ack_error = "rejected", ack.error_code
                self.registry.put(rec)
            await _close(ws, 1008)
            return
        conn = Connection(ws, ready)
        # The ack goes out before the connection is offered to requests: nothing may
        # precede it on the wire.
        try:
            await conn.send_text(ack.to_wire())
        except HTTPException:
            return  # gone already; the instance will reconnect
        old = self.conns.get(app_id)
        self.conns[app_id] = conn
        if old is not None:
            # The old link may be half-open: closing it must not hold up this one.
            old.closed = True
            asyncio.get_running_loop().create_task(_close(old.ws, 1000))
        rec.status = "running" if rec.status not in ("terminating",) else rec.status
        rec.ws_status = "connected"
        rec.process_id = ready.process_id
        rec.version = ready.version
        rec.resumed = dump(ready.resumed) if ready.resumed else None
        if ready.resumed:
            log.info("%s resumed %s", app_id, rec.resumed)
        rec.connected_at = m.now_iso()
        rec.connections += 1
        self.registry.put(rec)
        try:
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    break
                text = msg.get("text")
                if text is None:
                    text = (msg.get("bytes") or b"").decode("utf-8", "replace")
                self.on_message(app_id, conn, text)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            conn.closed = True
            if self.conns.get(app_id) is conn:
                del self.conns[app_id]
                rec = self.registry.get(app_id)
                if rec:
                    rec.ws_status = "disconnected"
                    self.registry.put(rec)

    def on_message(self, app_id: str, conn: Connection, text: str) -> None:
        try:
            obj = json.loads(text)
        except ValueError:
            obj = {"type": "<unparseable>", "raw": text[:2000]}
        if not isinstance(obj, dict):
            obj = {"type": "<not-an-object>", "raw": text[:2000]}
        if not self.journal.record(app_id, conn.process_id, obj):
            return  # duplicate seq: already recorded and handled
        mtype = obj.get("type")
        try:
            m.parse_app_message(obj)
        except (ValueError, ValidationError) as exc:
            log.warning("%s sent a message that does not match its model: %s", app_id, exc)
        rec = self.registry.get(app_id)
        if rec and mtype == "engine_crashed" and not obj.get("restarting"):
            rec.status = "crashed"
            self.registry.put(rec)
        elif rec and mtype == "app_terminated" and obj.get("status", "ok") == "ok":
            rec.status = "terminating"
            self.registry.put(rec)
        elif mtype == "stream_lost":
            log.warning("%s stream %s camera %s lost its stream (%s), %s", app_id, obj.get("stream_id"),
                        obj.get("camera_id"), obj.get("reason"),
                        "reconnecting" if obj.get("will_retry") else "giving up")
        elif mtype == "stream_resumed":
            log.info("%s stream %s camera %s resumed after %s ms", app_id, obj.get("stream_id"),
                     obj.get("camera_id"), obj.get("down_ms"))
        rid = obj.get("request_id")
        if mtype in m.REPLY_TYPES and isinstance(rid, str):
            fut = self.pending.get(app_id, {}).pop(rid, None)
            if fut is not None and not fut.done():
                fut.set_result(obj)

    async def request(self, app_id: str, msg: Dict[str, Any], timeout: Optional[float] = None,
                      wait: bool = True) -> Optional[Dict[str, Any]]:
        """Send a request and wait for the reply carrying its request_id."""
        conn = self._conn(app_id)
        rid = msg.get("request_id")
        fut: Optional[asyncio.Future] = None
        if wait and isinstance(rid, str):
            fut = asyncio.get_running_loop().create_future()
            self.pending.setdefault(app_id, {})[rid] = fut
        await conn.send_text(json.dumps(msg))
        if fut is None:
            return None
        try:
            return await asyncio.wait_for(fut, timeout or self.settings.reply_timeout)
        except asyncio.TimeoutError:
            self.pending.get(app_id, {}).pop(rid, None)
            raise HTTPException(504, f"no reply to {msg.get('type')} {rid} within the timeout")

    def _conn(self, app_id: str) -> Connection:
        if self.registry.get(app_id) is None and app_id not in self.conns:
            raise HTTPException(404, f"unknown instance {app_id!r}")
        conn = self.conns.get(app_id)
        if conn is None or conn.closed:
            raise HTTPException(409, f"instance {app_id!r} is not connected")
        return conn


async def _close(ws: WebSocket, code: int) -> None:
    try:
        await ws.close(code)
    except Exception:  # already closed or broken: nothing to do
        pass


# ---------------------------------------------------------------- HTTP bodies

class LaunchRequest(BaseModel):
    app_id: str = pattern_field(r"^[A-Za-z0-9_.-]{1,64}$")
    config_path: str
    streams_count: Optional[int] = None
    env: Dict[str, str] = Field(default_factory=dict)
    launch: bool = True  # False: only register a record for an instance started elsewhere
    ws_url: Optional[str] = None


class StartBody(BaseModel):
    stream_id: int
    camera_id: int
    camera_type: m.CameraType
    camera_path: str
    camera_name: str
    output_dir: str
    init_file: Optional[m.FileItem] = None


class PushBody(BaseModel):
    stream_id: int
    camera_id: int
    files: List[Dict[str, Any]]
    files_count: Optional[int] = None


class InterruptBody(BaseModel):
    stream_id: int
    camera_id: int
    reason: str = "user_cancelled"


class RawFrame(BaseModel):
    text: Optional[str] = None
    binary_b64: Optional[str] = None


def create_app(settings: Optional[Settings] = None) -> FastAPI:
    """The FastAPI application (one Hub per application)."""
    hub = Hub(settings or Settings())

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        hub._reaper = asyncio.create_task(hub.reap_forever())
        try:
            yield
        finally:
            hub._reaper.cancel()
            hub.journal.close()

    app = fastapi_app(lifespan, title="ds reference server")
    app.state.hub = hub

    @app.websocket("/ws")
    async def ws_endpoint(ws: WebSocket,
                          allowed: Optional[FrozenSet[str]] = Depends(hub.settings.tokens.dependency)) -> None:
        await hub.serve(ws, allowed)

    @app.get("/health")
    async def health() -> Dict[str, Any]:
        return {"ok": True, "pid": os.getpid(), "connected": sorted(hub.conns)}

    @app.post("/instances")
    async def launch(req: LaunchRequest, request: Request) -> Dict[str, Any]:
        base = request.base_url
        scheme = "wss" if base.scheme == "https" else "ws"  # uvicorn serving TLS itself
        ws_url = f"{scheme}://{base.hostname}:{base.port}/ws"
        return dump(hub.launch(req, ws_url))

    @app.get("/instances")
    async def list_instances() -> List[Dict[str, Any]]:
        return [dump(r) for r in hub.registry.all()]

    @app.get("/instances/{app_id}")
    async def get_instance(app_id: str) -> Dict[str, Any]:
        rec = hub.registry.get(app_id)
        if rec is None:
            raise HTTPException(404, f"unknown instance {app_id!r}")
        return dump(rec)

    @app.post("/instances/{app_id}/start_analysis")
    async def start_analysis(app_id: str, body: StartBody,
                             timeout: Optional[float] = None) -> Dict[str, Any]:
        msg = m.StartAnalysis(**dump(body, exclude_none=True))
        return await hub.request(app_id, json.loads(msg.to_wire()), timeout)

    @app.post("/instances/{app_id}/push_file")
    async def push_file(app_id: str, body: PushBody, ack_wait: float = 0.5) -> Dict[str, Any]:
        # push_ack only comes on error (spec §2.3.3): wait a little for one.
        msg = {"type": "push_file", "request_id": m.new_request_id(), "stream_id": body.stream_id,
               "camera_id": body.camera_id,
               "files_count": body.files_count if body.files_count is not None
               else sum(1 for f in body.files if f.get("file_type") != "eos"),
               "files": body.files}
        try:
            ack = await hub.request(app_id, msg, timeout=ack_wait, wait=ack_wait > 0)
        except HTTPException as exc:
            if exc.status_code != 504:
                raise
            ack = None
        return {"request_id": msg["request_id"], "push_ack": ack}

    @app.post("/instances/{app_id}/interrupt_analysis")
    async def interrupt(app_id: str, body: InterruptBody,
                        timeout: Optional[float] = None) -> Dict[str, Any]:
        msg = m.InterruptAnalysis(**dump(body))
        return await hub.request(app_id, json.loads(msg.to_wire()), timeout)

    @app.get("/instances/{app_id}/analysis_status")
    async def analysis_status(app_id: str, stream_id: Optional[int] = None,
                              camera_id: Optional[int] = None,
                              timeout: Optional[float] = None) -> Dict[str, Any]:
        msg = m.QueryAnalysisStatus(stream_id=stream_id, camera_id=camera_id)
        return await hub.request(app_id, json.loads(msg.to_wire()), timeout)

    @app.get("/instances/{app_id}/metrics")
    async def metrics(app_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        return await hub.request(app_id, json.loads(m.QueryMetrics().to_wire()), timeout)

    @app.get("/instances/{app_id}/logs")
    async def logs(app_id: str, lines: int = 100, level: str = "info",
                   timeout: Optional[float] = None) -> Dict[str, Any]:
        msg = m.QueryLogs(lines=lines, level=level)
        return await hub.request(app_id, json.loads(msg.to_wire()), timeout)

    @app.post("/instances/{app_id}/terminate")
    async def terminate(app_id: str, timeout: Optional[float] = None) -> Dict[str, Any]:
        reply = await hub.request(app_id, json.loads(m.TerminateApp().to_wire()), timeout)
        rec = hub.registry.get(app_id)
        if rec and reply.get("status") == "ok" and rec.exit_code is None:
            rec.status = "terminating"
            hub.registry.put(rec)
        return reply

    @app.post("/instances/{app_id}/request")
    async def raw_request(app_id: str, msg: Dict[str, Any] = Body(...),
                          timeout: Optional[float] = None) -> Dict[str, Any]:
        """Send any JSON object; a string request_id is added when absent and the reply
        carrying it is returned."""
        msg.setdefault("request_id", m.new_request_id())
        return await hub.request(app_id, msg, timeout)

    @app.post("/instances/{app_id}/send")
    async def raw_send(app_id: str, frame: RawFrame) -> Dict[str, Any]:
        """Send one raw frame (text or base64 binary); returns the journal index before it,
        so the caller can look for what came back."""
        conn = hub._conn(app_id)
        index = hub.journal.count(app_id)
        if frame.binary_b64 is not None:
            await conn.send_bytes(base64.b64decode(frame.binary_b64))
        else:
            await conn.send_text(frame.text or "")
        return {"journal_index": index}

    @app.get("/instances/{app_id}/messages")
    async def messages(app_id: str, since: int = 0, type: Optional[str] = Query(None),
                       limit: int = 100000) -> Dict[str, Any]:
        types = set(type.split(",")) if type else None
        entries = hub.journal.entries(app_id, since)
        out = [e for e in entries if types is None or e["msg"].get("type") in types][:limit]
        return {"messages": out, "next": since + len(entries),
                "duplicates": hub.journal.duplicates.get(app_id, 0)}

    @app.get("/instances/{app_id}/supervisord")
    async def supervisord_info(app_id: str) -> Dict[str, Any]:
        if hub.registry.get(app_id) is None:
            raise HTTPException(404, f"unknown instance {app_id!r}")
        info = await asyncio.to_thread(hub.supervisord_rpc, "info", app_id)
        hub._track(app_id, info)
        return info

    @app.post("/instances/{app_id}/supervisord")
    async def supervisord_control(app_id: str, action: str) -> Dict[str, Any]:
        """Spec §2.2 (5) through supervisord: start or stop (TERM, then SIGKILL after
        stopwaitsecs; waits) the app_id's program; answers getProcessInfo."""
        if action not in ("start", "stop"):
            raise HTTPException(400, "action is start|stop")
        if hub.registry.get(app_id) is None:
            raise HTTPException(404, f"unknown instance {app_id!r}: POST /instances first")
        info = await asyncio.to_thread(hub.supervisord_rpc, action, app_id)
        hub.supd_apps.add(app_id)
        hub._track(app_id, info)
        return info

    @app.post("/instances/{app_id}/watchdog")
    async def watchdog(app_id: str, action: str = "pgrep", sig: str = "TERM") -> Dict[str, Any]:
        if action not in ("pgrep", "pkill") or sig not in ("TERM", "KILL", "INT"):
            raise HTTPException(400, "action is pgrep|pkill, sig is TERM|KILL|INT")
        return hub.watchdog(app_id, action, sig)

    return app


if not log.handlers:
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s refserver: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(os.environ.get("REFSERVER_LOG_LEVEL", "INFO"))
    log.propagate = False

app = create_app()
