"""supervisord's XML-RPC interface, the second way spec §2.2 (5) offers to control the
instances: one supervisord program per app_id (docker/supervisord/gen-conf.py writes them),
started, stopped and watched with the standard library's xmlrpc.client — the interface
`supervisorctl` itself uses."""
from __future__ import annotations

import http.client
import socket
import urllib.parse
import xmlrpc.client
from typing import Any, Dict

# supervisor.xmlrpc.Faults codes this module acts on.
BAD_NAME = 10
ALREADY_STARTED = 60
NOT_RUNNING = 70

# Error types a call raises: supervisord unreachable, or a fault it answered.
Error = (OSError, xmlrpc.client.Error)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _Transport(xmlrpc.client.Transport):
    """HTTP over a unix socket (path set) or TCP, with a timeout on every call."""

    def __init__(self, timeout: float, path: str = "") -> None:
        super().__init__()
        self._timeout = timeout
        self._path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        if self._path:
            return _UnixConnection(self._path, self._timeout)
        conn = super().make_connection(host)
        conn.timeout = self._timeout
        return conn


class Supervisord:
    """One supervisord, at `unix:///path/supervisor.sock` or `http://[user:pw@]host:port`.
    Program names come from `program` with `{app_id}` filled in."""

    def __init__(self, url: str, program: str = "ds-{app_id}", timeout: float = 30.0) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme == "unix":
            if not parts.path:
                raise ValueError(f"supervisord URL {url!r}: want unix:///path/to/socket")
            self._uri, self._path = "http://localhost/RPC2", parts.path
        elif parts.scheme == "http" and parts.hostname:
            self._uri, self._path = (url if parts.path not in ("", "/")
                                     else url.rstrip("/") + "/RPC2"), ""
        else:
            raise ValueError(f"supervisord URL {url!r}: want unix:///path or http://host:port")
        if "{app_id}" not in program:
            raise ValueError(f"supervisord program name {program!r} lacks {{app_id}}")
        self.url = url
        self.program_pattern = program
        self.timeout = timeout

    def program(self, app_id: str) -> str:
        return self.program_pattern.format(app_id=app_id)

    def _rpc(self) -> Any:
        # A proxy per call: xmlrpc.client proxies are not safe to share between threads.
        return xmlrpc.client.ServerProxy(self._uri, transport=_Transport(self.timeout, self._path),
                                         allow_none=True).supervisor

    def info(self, app_id: str) -> Dict[str, Any]:
        """getProcessInfo: statename, pid, exitstatus, spawnerr, description, …"""
        return self._rpc().getProcessInfo(self.program(app_id))

    def all_info(self) -> Dict[str, Dict[str, Any]]:
        """getAllProcessInfo by program name (one call for every program)."""
        return {i["name"]: i for i in self._rpc().getAllProcessInfo()}

    def start(self, app_id: str) -> Dict[str, Any]:
        """startProcess without waiting for startsecs; a program already running (an
        autostart one) is taken as it is."""
        try:
            self._rpc().startProcess(self.program(app_id), False)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != ALREADY_STARTED:
                raise
        return self.info(app_id)

    def stop(self, app_id: str) -> Dict[str, Any]:
        """stopProcess and wait: stopsignal (TERM), then SIGKILL after stopwaitsecs."""
        try:
            self._rpc().stopProcess(self.program(app_id), True)
        except xmlrpc.client.Fault as exc:
            if exc.faultCode != NOT_RUNNING:
                raise
        return self.info(app_id)
