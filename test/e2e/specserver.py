"""A FastAPI server written from the specification alone: it confirms `app_ready` with a
plain `execute_ack` (no `last_seq`), knows nothing of `seq` and de-duplicates nothing.

Every frame an instance sends is appended to `<SPEC_DATA_DIR>/<instance_id>.jsonl` once it is
handled (after SPEC_HANDLE_DELAY seconds) (written before the next frame is read, so it survives a SIGKILL), with the
connection number and the time; so is every disconnection with its close code. The tests
drive instances through two HTTP endpoints:

    POST /send/{instance_id}          body: one JSON object, sent as a text frame
    POST /junk/{instance_id}?mib=N    one text frame of N MiB (not a valid request)
    GET  /health                      {"connected": [instance ids with a confirmed handshake]}

Run: /usr/bin/python3 -m uvicorn specserver:app --app-dir test/e2e --port P --ws websockets
"""
from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, Dict

from fastapi import Body, FastAPI, HTTPException, WebSocket
from starlette.websockets import WebSocketDisconnect

DATA_DIR = os.environ.get("SPEC_DATA_DIR", "/tmp/specserver")
# Seconds spent handling each frame before it is recorded (a database write, say): frames
# read meanwhile wait in the WebSocket layer's queue, and a SIGKILL loses them.
HANDLE_DELAY = float(os.environ.get("SPEC_HANDLE_DELAY", "0"))
os.makedirs(DATA_DIR, exist_ok=True)

app = FastAPI(title="specification-only server")
conns: Dict[str, WebSocket] = {}
numbers: Dict[str, int] = {}


def journal(instance_id: str, entry: Dict[str, Any]) -> None:
    entry["at"] = time.time()
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(os.path.join(DATA_DIR, f"{instance_id}.jsonl"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)  # in the kernel at once: survives SIGKILL
    finally:
        os.close(fd)


def connection_number(instance_id: str) -> int:
    """Connections of this instance so far, over the restarts of this server."""
    if instance_id not in numbers:
        path = os.path.join(DATA_DIR, f"{instance_id}.jsonl")
        n = 0
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        n = max(n, json.loads(line).get("conn", 0))
                    except ValueError:
                        pass  # a line cut by a SIGKILL
        numbers[instance_id] = n
    numbers[instance_id] += 1
    return numbers[instance_id]


@app.websocket("/ws")
async def ws_endpoint(ws: WebSocket) -> None:
    await ws.accept()
    try:
        ready = json.loads(await ws.receive_text())
    except (WebSocketDisconnect, ValueError, KeyError, RuntimeError):
        return
    instance_id = str(ready.get("instance_id", "unknown"))
    conn = connection_number(instance_id)
    journal(instance_id, {"conn": conn, "msg": ready})
    await ws.send_text(json.dumps({
        "type": "execute_ack", "request_id": ready.get("request_id"), "instance_id": instance_id,
        "config_verified": True, "streams_count_verified": True, "status": "confirmed"}))
    conns[instance_id] = ws
    code = None
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                code = msg.get("code")
                break
            text = msg.get("text") or (msg.get("bytes") or b"").decode("utf-8", "replace")
            try:
                obj = json.loads(text)
            except ValueError:
                obj = {"type": "<unparseable>"}
            if HANDLE_DELAY > 0:
                await asyncio.sleep(HANDLE_DELAY)
            journal(instance_id, {"conn": conn, "msg": obj})
    except (WebSocketDisconnect, RuntimeError) as exc:
        code = getattr(exc, "code", None)
    finally:
        if conns.get(instance_id) is ws:
            del conns[instance_id]
        journal(instance_id, {"conn": conn, "disconnect": code})


def _conn(instance_id: str) -> WebSocket:
    ws = conns.get(instance_id)
    if ws is None:
        raise HTTPException(409, f"{instance_id} is not connected")
    return ws


@app.post("/send/{instance_id}")
async def send(instance_id: str, msg: Dict[str, Any] = Body(...)) -> Dict[str, Any]:
    try:
        await _conn(instance_id).send_text(json.dumps(msg))
    except (RuntimeError, OSError) as exc:
        raise HTTPException(409, f"send failed: {exc}") from exc
    return {"ok": True}


@app.post("/junk/{instance_id}")
async def junk(instance_id: str, mib: int = 64) -> Dict[str, Any]:
    frame = '{"type":"push_file","pad":"' + "x" * ((mib << 20) - 30) + '"}'
    try:
        await _conn(instance_id).send_text(frame)
    except Exception as exc:  # the instance closes mid-frame: that is the point
        return {"sent": False, "error": str(exc)}
    return {"sent": True}


@app.get("/health")
async def health() -> Dict[str, Any]:
    return {"ok": True, "pid": os.getpid(), "connected": sorted(conns)}
