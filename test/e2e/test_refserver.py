"""The reference server on its own, driven by a scripted WebSocket client that plays an
instance: handshake verification, request/reply matching, seq de-duplication and the
journal surviving a server restart. Needs no instance binaries."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading

import pytest
import websockets

import harness as h


@pytest.fixture
def plain_server(root, request):
    srv = h.Server(os.path.join(root, f"plain-{request.node.name}")).start()
    yield srv
    srv.stop()


def ready_msg(app_id, config, pid=4242, streams=3, seq=1):
    return {"type": "app_ready", "request_id": "r-ready", "instance_id": app_id,
            "config_path": config, "process_id": pid, "streams_count": streams, "status": "ok",
            "version": "fake", "gpu_allocated": [0], "start_time": "2026-01-01T00:00:00+00:00",
            "seq": seq}


async def handshake(url, ready):
    ws = await websockets.connect(url, max_size=None)
    await ws.send(json.dumps(ready))
    ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
    return ws, ack


def run(coro):
    return asyncio.run(coro)


def test_execute_ack_confirmed_and_rejections(plain_server, root, config):
    c = plain_server.client
    cfg = config(3)
    c.launch("fa", cfg, launch=False)
    rec = c.instance("fa")
    assert rec["status"] == "registered" and rec["streams_count"] == 3

    async def scenario():
        ws, ack = await handshake(plain_server.ws_url, ready_msg("fa", cfg))
        await ws.close()
        out = [ack]
        for ready in (ready_msg("fa", "/wrong/path.txt"), ready_msg("fa", cfg, streams=5),
                      ready_msg("nobody", cfg), {"type": "file_done", "request_id": "q"}):
            ws, ack = await handshake(plain_server.ws_url, ready)
            out.append(ack)
            await asyncio.wait_for(ws.wait_closed(), 10)
        return out

    ok, cfg_bad, streams_bad, unknown, not_ready = run(scenario())
    assert ok["type"] == "execute_ack" and ok["status"] == "confirmed"
    assert ok["request_id"] == "r-ready" and ok["instance_id"] == "fa"
    assert ok["config_verified"] is True and ok["streams_count_verified"] is True
    assert ok["last_seq"] == 0 and ok["timestamp"]
    assert cfg_bad["status"] == "error" and cfg_bad["error_code"] == "CONFIG_MISMATCH"
    assert cfg_bad["config_verified"] is False
    assert cfg_bad["expected_config"] == cfg and cfg_bad["received_config"] == "/wrong/path.txt"
    assert cfg_bad["error_message"] and cfg_bad["timestamp"]
    assert streams_bad["error_code"] == "STREAMS_COUNT_MISMATCH"
    assert streams_bad["streams_count_verified"] is False
    assert unknown["error_code"] == "UNKNOWN_INSTANCE"
    assert not_ready["error_code"] == "BAD_APP_READY" and not_ready["request_id"] == "q"
    assert c.instance("fa")["status"] == "rejected"


def test_dedup_by_seq_and_journal_survives_restart(plain_server, config):
    c = plain_server.client
    cfg = config(3)
    c.launch("fb", cfg, launch=False)
    event = {"type": "file_done", "request_id": "x", "stream_id": 0, "camera_id": 1,
             "file_id": 2, "processed_file": "a.mp4"}

    async def send_events(seqs, pid=4242):
        ws, ack = await handshake(plain_server.ws_url, ready_msg("fb", cfg, pid=pid, seq=seqs[0]))
        for s in seqs[1:]:
            await ws.send(json.dumps({**event, "seq": s}))
        # a query answered by this fake app proves every event before it was read
        return ws, ack

    async def first():
        ws, ack = await send_events([1, 2, 3, 3, 2, 4])
        await ws.close()
        return ack

    assert run(first())["last_seq"] == 0
    h.wait_until(lambda: c.messages("fb")["duplicates"] == 2, 10, "duplicates counted")
    seqs = [m["seq"] for m in c.msgs("fb")]
    assert seqs == [1, 2, 3, 4]

    plain_server.kill()
    plain_server.start()

    async def second():
        # Same process after the restart: the ack tells it what was recorded.
        ws, ack = await send_events([5, 4, 6])
        await ws.close()
        # A new process of the same instance starts again at seq 1.
        ws2, ack2 = await send_events([1, 2], pid=4343)
        await ws2.close()
        return ack, ack2

    ack, ack2 = run(second())
    # last_seq: recorded before this handshake (its own app_ready not counted)
    assert ack["last_seq"] == 4 and ack2["last_seq"] == 0
    h.wait_until(lambda: len(c.msgs("fb")) == 8, 10, "8 recorded messages")
    recorded = c.messages("fb")["messages"]
    assert [(e["process_id"], e["msg"]["seq"]) for e in recorded] == \
        [(4242, 1), (4242, 2), (4242, 3), (4242, 4), (4242, 5), (4242, 6), (4343, 1), (4343, 2)]
    assert c.messages("fb")["duplicates"] == 3
    assert [e["index"] for e in c.messages("fb", since=6)["messages"]] == [6, 7]


def test_request_reply_matching(plain_server, config):
    """Replies are matched by request_id; an event carrying the same request_id is not a
    reply; a reply that never comes gives HTTP 504."""
    c = plain_server.client
    cfg = config(3)
    c.launch("fc", cfg, launch=False)
    stop = threading.Event()
    got = []

    async def fake_app():
        ws, _ = await handshake(plain_server.ws_url, ready_msg("fc", cfg))
        seq = 1
        while not stop.is_set():
            try:
                req = json.loads(await asyncio.wait_for(ws.recv(), 0.2))
            except asyncio.TimeoutError:
                continue
            got.append(req)
            rid = req.get("request_id")
            if req["type"] == "start_analysis":
                seq += 1
                await ws.send(json.dumps({"type": "processing_started", "seq": seq,
                                          "request_id": rid, "stream_id": 0, "camera_id": 1,
                                          "file_id": 1, "current_file": "a"}))
                seq += 1
                await ws.send(json.dumps({"type": "analysis_started", "seq": seq,
                                          "request_id": rid, "stream_id": 0, "camera_id": 1,
                                          "status": "ok", "message": "m"}))
            elif req["type"] == "query_metrics":
                pass  # never answered
        await ws.close()

    t = threading.Thread(target=lambda: run(fake_app()))
    t.start()
    try:
        c.wait_connected("fc")
        reply = c.start("fc", **h.start_body(0, 1, "fileset", "/tmp/x"))
        assert reply["type"] == "analysis_started" and reply["status"] == "ok"
        assert reply["request_id"] == got[0]["request_id"]
        assert got[0]["type"] == "start_analysis" and got[0]["camera_type"] == "fileset"
        with pytest.raises(RuntimeError, match="HTTP 504"):
            c.request("fc", {"type": "query_metrics"}, timeout=0.5)
    finally:
        stop.set()
        t.join(10)


def test_bearer_tokens(root, config, tmp_path):
    """REFSERVER_WS_TOKENS_FILE: an upgrade without a token, with an unknown one or with
    one of another app_id is refused before accept (uvicorn 0.17: HTTP 403); a token may
    only claim its own app_id in app_ready; the file is read again at each upgrade; a
    malformed file stops the server at start."""
    tokens = tmp_path / "tokens"
    tokens.write_text("# app_id token\nta tok-a\ntb tok-b\n")
    srv = h.Server(os.path.join(root, "tokens-server"), env={"REFSERVER_WS_TOKENS_FILE": str(tokens)}).start()
    try:
        cfg = config(3)
        for app_id in ("ta", "tb"):
            srv.client.launch(app_id, cfg, launch=False)

        async def status(headers):
            try:
                ws = await websockets.connect(srv.ws_url, extra_headers=headers)
            except websockets.exceptions.InvalidStatusCode as exc:
                return exc.status_code
            await ws.close()
            return 101

        async def ack(headers, ready):
            ws = await websockets.connect(srv.ws_url, extra_headers=headers)
            await ws.send(json.dumps(ready))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.close()
            return reply

        bearer = lambda tok, app=None: {"Authorization": f"Bearer {tok}", **({"X-DS-App-Id": app} if app else {})}
        assert run(status({})) == 403
        assert run(status(bearer("tok-x", "ta"))) == 403
        assert run(status(bearer("tok-a", "tb"))) == 403
        assert run(status(bearer("tok-a", "ta"))) == 101
        # Without X-DS-App-Id (a client that sends only the token) app_ready decides.
        assert run(ack(bearer("tok-a"), ready_msg("ta", cfg)))["status"] == "confirmed"
        stolen = run(ack(bearer("tok-a"), ready_msg("tb", cfg)))
        assert stolen["status"] == "error" and stolen["error_code"] == "UNAUTHORIZED_INSTANCE", stolen
        lying = run(ack(bearer("tok-a", "ta"), ready_msg("tb", cfg)))
        assert lying["error_code"] == "UNAUTHORIZED_INSTANCE", lying
        # Rotation on the server's side: a new token counts from the next upgrade.
        assert run(status(bearer("tok-a2", "ta"))) == 403
        with open(tokens, "a") as fh:
            fh.write("ta tok-a2\n")
        assert run(ack(bearer("tok-a2", "ta"), ready_msg("ta", cfg)))["status"] == "confirmed"
        log = open(os.path.join(srv.data_dir, "server.log")).read()
        for line in ("(app_id None): missing bearer token (401)", "(app_id ta): invalid token (401)",
                     "(app_id tb): token not valid for instance 'tb' (403)"):
            assert line in log, log
        assert "tok-a" not in log and "tok-x" not in log
    finally:
        srv.stop()

    tokens.write_text("ta\n")
    bad = h.Server(os.path.join(root, "tokens-server-bad"), env={"REFSERVER_WS_TOKENS_FILE": str(tokens)})
    with pytest.raises(RuntimeError, match="server exited"):
        bad.start(timeout=20)
    bad.stop()
    assert "line 1: want `<app_id> <token>`" in open(os.path.join(bad.data_dir, "server.log")).read()


def test_readme_token_dependency(tmp_path):
    """test/README.md's token check for a FastAPI server of one's own, run under uvicorn as
    written there (its TOKENS line given test values)."""
    readme = open(os.path.join(h.TEST_DIR, "README.md"), encoding="utf-8").read()
    part = readme[readme.index("In a FastAPI server of your own"):]
    code = part[part.index("```python\n") + 10:]
    code = code[:code.index("```")]
    lines = [ln for ln in code.splitlines() if ln.startswith("TOKENS = ")]
    assert len(lines) == 1, lines
    code = code.replace(lines[0], 'TOKENS = {"cam-a": ["tok-a"], "cam-b": ["tok-b"]}')
    (tmp_path / "ownapp.py").write_text(code)
    port = h.free_port()
    log = open(tmp_path / "uvicorn.log", "wb")
    proc = subprocess.Popen([h.PY, "-m", "uvicorn", "ownapp:app", "--app-dir", str(tmp_path),
                             "--host", "127.0.0.1", "--port", str(port), "--ws", "websockets",
                             "--log-level", "warning"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    try:
        def listening():
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0
        h.wait_until(listening, 20, "the example server")
        url = f"ws://127.0.0.1:{port}/ws"

        async def handshake_with(headers, instance_id):
            try:
                ws = await websockets.connect(url, extra_headers=headers)
            except websockets.exceptions.InvalidStatusCode as exc:
                return exc.status_code
            await ws.send(json.dumps({"type": "app_ready", "request_id": "r1", "instance_id": instance_id}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.close()
            return reply

        auth = lambda tok, app: {"Authorization": f"Bearer {tok}", "X-DS-App-Id": app}
        assert run(handshake_with({"X-DS-App-Id": "cam-a"}, "cam-a")) == 403
        assert run(handshake_with(auth("tok-b", "cam-a"), "cam-a")) == 403
        assert run(handshake_with(auth("tok-a", "cam-a"), "cam-a"))["status"] == "confirmed"
        stolen = run(handshake_with(auth("tok-a", "cam-a"), "cam-b"))
        assert stolen["status"] == "error" and stolen["error_code"] == "UNAUTHORIZED_INSTANCE"
    finally:
        proc.kill()
        proc.wait(timeout=10)
