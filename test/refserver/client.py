"""A small synchronous client of the reference server's HTTP API (used by the demo and the
end-to-end tests; an operator can use it from a Python shell)."""
from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import httpx


class Timeout(AssertionError):
    """A condition awaited with a deadline did not come true."""


def wait_until(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll pred until it returns something truthy; raise Timeout after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Timeout(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


class RefClient:
    """HTTP API of the reference server at base_url (e.g. http://127.0.0.1:8000)."""

    def __init__(self, base_url: str, timeout: float = 30.0, verify: Any = True,
                 cert: Any = None) -> None:
        """verify: True, False or a CA bundle path for an https:// server; cert: a client
        certificate (path, or (cert, key) paths) for one that wants it (uvicorn's
        --ssl-cert-reqs 2)."""
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=verify, cert=cert)

    def close(self) -> None:
        self.http.close()

    def _json(self, resp: httpx.Response) -> Any:
        if resp.status_code >= 400:
            raise RuntimeError(f"{resp.request.method} {resp.request.url.path}: "
                               f"HTTP {resp.status_code} {resp.text}")
        return resp.json()

    # ------------------------------------------------------------ instances
    def health(self) -> Dict[str, Any]:
        return self._json(self.http.get("/health"))

    def launch(self, app_id: str, config_path: str, env: Optional[Dict[str, str]] = None,
               streams_count: Optional[int] = None, launch: bool = True) -> Dict[str, Any]:
        body = {"app_id": app_id, "config_path": config_path, "env": env or {}, "launch": launch}
        if streams_count is not None:
            body["streams_count"] = streams_count
        return self._json(self.http.post("/instances", json=body))

    def instances(self) -> List[Dict[str, Any]]:
        return self._json(self.http.get("/instances"))

    def instance(self, app_id: str) -> Dict[str, Any]:
        return self._json(self.http.get(f"/instances/{app_id}"))

    def wait_connected(self, app_id: str, timeout: float = 20.0) -> Dict[str, Any]:
        def ready() -> Optional[Dict[str, Any]]:
            rec = self.instance(app_id)
            if rec["status"] in ("rejected", "exited", "crashed"):
                tail = ""
                try:
                    with open(rec["log_path"], errors="replace") as fh:
                        tail = fh.read()[-1500:]
                except (OSError, TypeError):
                    pass
                raise RuntimeError(f"instance {app_id} ended before connecting: {rec}\n"
                                   f"launch log tail:\n{tail}")
            return rec if rec["ws_status"] == "connected" and rec["status"] == "running" else None
        return wait_until(ready, timeout, f"{app_id} to connect")

    def wait_exit(self, app_id: str, timeout: float = 20.0) -> Dict[str, Any]:
        return wait_until(lambda: (lambda r: r if r["exit_code"] is not None else None)(
            self.instance(app_id)), timeout, f"{app_id} to exit")

    # ------------------------------------------------------------ requests
    def start(self, app_id: str, timeout: Optional[float] = None, **fields: Any) -> Dict[str, Any]:
        params = {"timeout": timeout} if timeout else {}
        return self._json(self.http.post(f"/instances/{app_id}/start_analysis", json=fields,
                                         params=params))

    def push(self, app_id: str, stream_id: int, camera_id: int, files: List[Dict[str, Any]],
             ack_wait: float = 0.5, files_count: Optional[int] = None) -> Dict[str, Any]:
        body: Dict[str, Any] = {"stream_id": stream_id, "camera_id": camera_id, "files": files}
        if files_count is not None:
            body["files_count"] = files_count
        return self._json(self.http.post(f"/instances/{app_id}/push_file", json=body,
                                         params={"ack_wait": ack_wait}))

    def interrupt(self, app_id: str, stream_id: int, camera_id: int,
                  reason: str = "user_cancelled") -> Dict[str, Any]:
        return self._json(self.http.post(f"/instances/{app_id}/interrupt_analysis",
                                         json={"stream_id": stream_id, "camera_id": camera_id,
                                               "reason": reason}))

    def status(self, app_id: str, stream_id: Optional[int] = None,
               camera_id: Optional[int] = None, timeout: Optional[float] = None) -> Dict[str, Any]:
        params: Dict[str, Any] = {}
        if stream_id is not None:
            params["stream_id"] = stream_id
        if camera_id is not None:
            params["camera_id"] = camera_id
        if timeout:
            params["timeout"] = timeout
        return self._json(self.http.get(f"/instances/{app_id}/analysis_status", params=params))

    def metrics(self, app_id: str) -> Dict[str, Any]:
        return self._json(self.http.get(f"/instances/{app_id}/metrics"))

    def logs(self, app_id: str, lines: int = 100, level: str = "info") -> Dict[str, Any]:
        return self._json(self.http.get(f"/instances/{app_id}/logs",
                                        params={"lines": lines, "level": level}))

    def terminate(self, app_id: str) -> Dict[str, Any]:
        return self._json(self.http.post(f"/instances/{app_id}/terminate"))

    def request(self, app_id: str, msg: Dict[str, Any], timeout: Optional[float] = None) -> Dict[str, Any]:
        params = {"timeout": timeout} if timeout else {}
        return self._json(self.http.post(f"/instances/{app_id}/request", json=msg, params=params))

    def send_raw(self, app_id: str, text: Optional[str] = None,
                 binary_b64: Optional[str] = None) -> int:
        body = {"text": text} if binary_b64 is None else {"binary_b64": binary_b64}
        return self._json(self.http.post(f"/instances/{app_id}/send", json=body))["journal_index"]

    def watchdog(self, app_id: str, action: str = "pgrep", sig: str = "TERM") -> Dict[str, Any]:
        return self._json(self.http.post(f"/instances/{app_id}/watchdog",
                                         params={"action": action, "sig": sig}))

    def supervisord(self, app_id: str, action: Optional[str] = None) -> Dict[str, Any]:
        """Launch mode supervisord: the program's getProcessInfo, after start or stop."""
        if action is None:
            return self._json(self.http.get(f"/instances/{app_id}/supervisord"))
        return self._json(self.http.post(f"/instances/{app_id}/supervisord",
                                         params={"action": action}))

    # ------------------------------------------------------------ recorded messages
    def messages(self, app_id: str, since: int = 0, types: Optional[str] = None) -> Dict[str, Any]:
        params: Dict[str, Any] = {"since": since}
        if types:
            params["type"] = types
        return self._json(self.http.get(f"/instances/{app_id}/messages", params=params))

    def msgs(self, app_id: str, since: int = 0, types: Optional[str] = None) -> List[Dict[str, Any]]:
        """The recorded message objects only."""
        return [e["msg"] for e in self.messages(app_id, since, types)["messages"]]

    def wait_message(self, app_id: str, pred: Callable[[Dict[str, Any]], bool], since: int = 0,
                     timeout: float = 20.0, what: str = "a message") -> Dict[str, Any]:
        """The first recorded message at index >= since for which pred is true."""
        def find() -> Optional[Dict[str, Any]]:
            for e in self.messages(app_id, since)["messages"]:
                if pred(e["msg"]):
                    return e["msg"]
            return None
        return wait_until(find, timeout, f"{what} from {app_id}")

    def next_index(self, app_id: str) -> int:
        """Index the next recorded message will get."""
        return self._json(self.http.get(f"/instances/{app_id}/messages",
                                        params={"since": 0, "limit": 0}))["next"]
