"""Who may connect: the bearer tokens the reference server accepts on its WebSocket route,
one shared token or a list per app_id, checked before the WebSocket is accepted.

An instance sends `Authorization: Bearer <token>` and `X-DS-App-Id: <APP_ID>` on its
upgrade request (docs/protocol.md, "The handshake's headers"). The check is a FastAPI
dependency of the `/ws` route (`TokenTable.dependency`): a request without a token, with an
unknown one, or with one that is not valid for the app_id it names is refused by raising
`WebSocketException` before `accept()`. Starlette then closes the WebSocket before accepting
it, and uvicorn answers the upgrade with `HTTP 403 Forbidden` (empty body) whatever the close
code: uvicorn 0.17 has no way to send another status on a WebSocket route. After `accept()`
the app_id of `app_ready` must be one the token is valid for (a token of `cam-a` cannot
claim `cam-b`).

Settings (environment, read at start):

    REFSERVER_WS_TOKEN         one token every instance may use
    REFSERVER_WS_TOKENS_FILE   a file of `<app_id> <token>` lines (`*` as app_id: any
                               instance; `#` comments; several lines per app_id are all
                               valid, so that a rotation can overlap). Read again at every
                               upgrade: a token added or removed there counts from the next
                               connection on, without a restart.

With neither set, every upgrade is accepted (the specification's server checks nothing).
Tokens are compared in constant time and never logged.
"""
from __future__ import annotations

import hmac
import logging
import os
from typing import Dict, FrozenSet, List, Optional

from fastapi import WebSocket, WebSocketException, status

log = logging.getLogger("refserver")

ANY = "*"
APP_ID_HEADER = "x-ds-app-id"


class TokenError(ValueError):
    """The tokens file cannot be read or has a line that is not `<app_id> <token>`."""


class TokenTable:
    """The tokens the server accepts: app_id (or `*`) → tokens."""

    def __init__(self, shared: Optional[str] = None, path: Optional[str] = None) -> None:
        self.shared = shared or None
        self.path = path or None
        if self.path:
            self.load()  # a bad file is a settings error at start

    @classmethod
    def from_env(cls, env=os.environ) -> "TokenTable":
        return cls(env.get("REFSERVER_WS_TOKEN"), env.get("REFSERVER_WS_TOKENS_FILE"))

    @property
    def enabled(self) -> bool:
        return bool(self.shared or self.path)

    def load(self) -> Dict[str, List[str]]:
        table: Dict[str, List[str]] = {}
        if self.shared:
            table.setdefault(ANY, []).append(self.shared)
        if not self.path:
            return table
        try:
            with open(self.path, encoding="utf-8") as fh:
                lines = fh.read().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenError(f"REFSERVER_WS_TOKENS_FILE {self.path}: {exc}") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) != 2:
                raise TokenError(f"REFSERVER_WS_TOKENS_FILE {self.path} line {n}: "
                                 "want `<app_id> <token>`")
            table.setdefault(parts[0], []).append(parts[1])
        return table

    def token_for(self, app_id: str) -> Optional[str]:
        """The token an instance launched by this server is given: its own (the first
        listed), else a shared one."""
        if not self.enabled:
            return None
        table = self.load()
        for key in (app_id, ANY):
            if table.get(key):
                return table[key][0]
        return None

    def allowed(self, authorization: Optional[str], app_id: Optional[str]) -> Optional[FrozenSet[str]]:
        """The app_ids the upgrade's token is valid for (frozenset({ANY}) for a shared
        one), None when tokens are off. Raises PermissionError(status, reason) to refuse."""
        if not self.enabled:
            return None
        try:
            table = self.load()
        except TokenError as exc:
            log.error("refusing WebSocket upgrades: %s", exc)
            raise PermissionError(401, "server token list unreadable") from None
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PermissionError(401, "missing bearer token")
        token = token.strip().encode()
        apps = set()
        for key, tokens in table.items():
            # Every entry is compared, so the time taken does not say which matched.
            if any(hmac.compare_digest(token, t.encode()) for t in tokens):
                apps.add(key)
        if not apps:
            raise PermissionError(401, "invalid token")
        if app_id is not None and ANY not in apps and app_id not in apps:
            raise PermissionError(403, f"token not valid for instance {app_id!r}")
        return frozenset(apps)

    async def dependency(self, websocket: WebSocket) -> Optional[FrozenSet[str]]:
        """FastAPI dependency of the WebSocket route: the app_ids the connection may
        claim, or a refusal before accept (HTTP 403 on uvicorn 0.17)."""
        app_id = websocket.headers.get(APP_ID_HEADER)
        try:
            return self.allowed(websocket.headers.get("authorization"), app_id)
        except PermissionError as exc:
            code, reason = exc.args
            client = websocket.client.host if websocket.client else "?"
            log.warning("refusing WebSocket upgrade from %s (app_id %s): %s (%d)",
                        client, app_id, reason, code)
            raise WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason=reason)


def may_claim(allowed: Optional[FrozenSet[str]], app_id: str) -> bool:
    """Whether a connection whose token allows `allowed` may say it is app_id."""
    return allowed is None or ANY in allowed or app_id in allowed
