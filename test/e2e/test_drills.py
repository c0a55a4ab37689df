"""Fault drills: engine killed, server killed and restarted 20 times, a half-open link, a
server that refuses connections. Timings are printed (pytest -s) for the report."""
from __future__ import annotations

import os
import select
import signal
import socket
import threading
import time
from typing import List

import harness as h
from harness import EOS, file_item, start_body


def report(line: str) -> None:
    print(f"\n[drill] {line}")


def check_journal(client, app_id: str, pid: int) -> dict:
    """Messages of process pid: each seq once, in order, none missing."""
    entries = [e for e in client.messages(app_id)["messages"] if e["process_id"] == pid]
    seqs = [e["msg"]["seq"] for e in entries]
    # app_ready opens each connection, ahead of the resent messages it makes room for
    others = [e["msg"]["seq"] for e in entries if e["msg"]["type"] != "app_ready"]
    assert others == sorted(others), "messages recorded out of seq order"
    assert len(seqs) == len(set(seqs)), "a seq recorded twice"
    missing = sorted(set(range(1, max(seqs) + 1)) - set(seqs))
    assert not missing, f"seqs never delivered: {missing[:20]}"
    return {"messages": len(seqs), "duplicates_dropped": client.messages(app_id)["duplicates"]}


def check_files(client, app_id: str, camera_id: int, file_ids: List[int]) -> None:
    """Exactly one processing_started and one terminal event per file, in file order."""
    evs = [m for m in client.msgs(app_id, types="processing_started,file_done,file_error,analysis_complete")
           if m.get("camera_id") == camera_id]
    want = []
    for f in file_ids:
        want += [("processing_started", f), ("file_done", f)]
    want.append(("analysis_complete", None))
    assert [(e["type"], e.get("file_id")) for e in evs] == want
    assert evs[-1]["processed_count"] == len(file_ids)


def test_engine_kill_9(launcher, live_uri):
    c = launcher.client
    app_id = launcher.launch("crash", env={"DS_ENGINE_RESTARTS": "0"})  # today's exit 3
    out = launcher.out_dir(app_id, 71)
    init = {"file_type": "videostream", "file_id": 71, "file_path": live_uri,
            "file_name": "live", "output_path": os.path.join(out, "71.txt")}
    assert c.start(app_id, **start_body(2, 71, "videostream", out, init=init))["status"] == "ok"
    c.wait_message(app_id, lambda m: m["type"] == "processing_started" and m["camera_id"] == 71)
    pid = c.instance(app_id)["process_id"]
    engines = h.engine_pids(pid)
    assert len(engines) == 1
    t0 = time.time()
    os.kill(engines[0], signal.SIGKILL)
    crash = c.wait_message(app_id, lambda m: m["type"] == "engine_crashed", timeout=10)
    entry = [e for e in c.messages(app_id, types="engine_crashed")["messages"]][0]
    delay = entry["received_at"] - t0
    report(f"engine kill -9 → engine_crashed at the server after {delay * 1000:.0f} ms")
    assert delay <= 1.0
    assert crash["instance_id"] == app_id
    assert crash["exit_code"] is None and crash["signal"] in ("killed", "SIGKILL")
    assert isinstance(crash["last_log_lines"], list)
    assert {"stream_id": 2, "camera_id": 71, "file_id": 71} in \
        [{k: x.get(k) for k in ("stream_id", "camera_id", "file_id")} for x in crash["cameras_in_flight"]]
    rec = c.wait_exit(app_id, timeout=15)
    assert rec["exit_code"] == 3
    assert rec["status"] == "crashed"
    assert not any(h.alive(p) for p in engines + [pid])


def test_server_killed_and_restarted_20_times(launcher, fresh_server, clips):
    # The server under-reports last_seq by 3: every handshake makes the instance resend
    # messages the server already has, which it must drop by seq.
    fresh_server.env["REFSERVER_LAST_SEQ_LAG"] = "3"
    srv = fresh_server.start()
    c = srv.client
    app_id, proc = launcher.spawn_direct("restart", server=srv,
                                         env={"DS_BACKOFF_MAX": "300ms", "DS_LIVE_LOG_LEVEL": "panic"})
    out = launcher.out_dir(app_id, 81)
    next_id = iter(range(8100, 9000))
    file_ids = []

    def batch():
        items = [file_item(next(next_id), clips[name], out) for name in ("long", "c1", "c2")]
        file_ids.extend(i["file_id"] for i in items)
        return items

    first = batch()
    assert c.start(app_id, **start_body(0, 81, "fileset", out, init=first[0]))["status"] == "ok"
    c.push(app_id, 0, 81, first[1:], ack_wait=0)
    reconnect_times = []
    for _ in range(20):
        c.push(app_id, 0, 81, batch(), ack_wait=0)
        srv.kill(signal.SIGKILL)  # mid-analysis: the long clip of the batch is playing
        t0 = time.monotonic()
        srv.start()
        c.wait_connected(app_id, timeout=30)
        reconnect_times.append(time.monotonic() - t0)
    c.push(app_id, 0, 81, [EOS], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 81,
                   timeout=60)
    check_files(c, app_id, 81, file_ids)
    stats = check_journal(c, app_id, proc.pid)
    connections = len(c.msgs(app_id, types="app_ready"))
    report(f"server restarted {srv.starts - 1} times: {len(file_ids)} files, "
           f"{stats['messages']} messages, 0 lost, {stats['duplicates_dropped']} duplicates "
           f"dropped by seq, {connections} handshakes, reconnect after restart "
           f"max {max(reconnect_times):.2f}s")
    assert srv.starts == 21 and connections >= 21
    assert stats["duplicates_dropped"] >= 20  # resends after last_seq were really made
    assert proc.poll() is None


class StallingProxy:
    """A TCP proxy; stall() freezes the live connections (no byte forwarded, nothing
    closed: a half-open link) while new connections are forwarded normally."""

    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.pairs = []  # [client, upstream, frozen]
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stall(self) -> None:
        with self.lock:
            for p in self.pairs:
                p[2] = True

    def _run(self) -> None:
        while not self.stop.is_set():
            with self.lock:
                live = [p for p in self.pairs if not p[2]]
            socks = [self.listener] + [s for p in live for s in p[:2]]
            readable, _, _ = select.select(socks, [], [], 0.05)
            for s in readable:
                if s is self.listener:
                    cli, _ = self.listener.accept()
                    up = socket.create_connection(("127.0.0.1", self.target))
                    with self.lock:
                        self.pairs.append([cli, up, False])
                    continue
                pair = next((p for p in live if s in p[:2]), None)
                if pair is None or pair[2] or pair not in self.pairs:
                    continue
                other = pair[1] if s is pair[0] else pair[0]
                try:
                    data = s.recv(65536)
                    if not data:
                        raise OSError("eof")
                    other.sendall(data)
                except OSError:
                    with self.lock:
                        if pair not in self.pairs:
                            continue
                        self.pairs.remove(pair)
                    for x in pair[:2]:
                        x.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.listener.close()
        for p in self.pairs:
            for x in p[:2]:
                x.close()


def test_half_open_link_noticed_and_healed(launcher, fresh_server, clips):
    srv = fresh_server.start()
    c = srv.client
    proxy = StallingProxy(srv.port)
    try:
        app_id, proc = launcher.spawn_direct(
            "halfopen", server=srv, ws_url=f"ws://127.0.0.1:{proxy.port}/ws",
            env={"DS_HEARTBEAT_INTERVAL": "1s", "DS_HEARTBEAT_TIMEOUT": "1s",
                 "DS_BACKOFF_MAX": "500ms", "DS_LIVE_LOG_LEVEL": "panic"})
        out = launcher.out_dir(app_id, 91)
        items = [file_item(9100 + i, clips[n], out) for i, n in enumerate(("long", "long", "c1", "c2"))]
        assert c.start(app_id, **start_body(0, 91, "fileset", out, init=items[0]))["status"] == "ok"
        c.push(app_id, 0, 91, items[1:], ack_wait=0)
        n_ready = len(c.msgs(app_id, types="app_ready"))
        n_conn = c.instance(app_id)["connections"]
        t0 = time.time()
        proxy.stall()  # events of the files still playing now go into a dead link
        h.wait_until(lambda: len(c.msgs(app_id, types="app_ready")) > n_ready, 15, "a new handshake")
        entry = c.messages(app_id, types="app_ready")["messages"][-1]
        detect = entry["received_at"] - t0
        report(f"half-open link: new handshake {detect:.2f}s after the stall "
               f"(heartbeat 1s + timeout 1s, backoff ≤ 0.5s)")
        assert detect <= 1 + 1 + 0.5 + 1.5
        h.wait_until(lambda: c.instance(app_id)["connections"] > n_conn, 10, "the new link confirmed")
        c.push(app_id, 0, 91, [EOS], ack_wait=0)
        c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 91)
        check_files(c, app_id, 91, [i["file_id"] for i in items])
        stats = check_journal(c, app_id, proc.pid)
        # messages written into the dead link, delivered after the new handshake
        entries = c.messages(app_id)["messages"]
        ready_at = next(i for i, e in enumerate(entries)
                        if e["msg"]["type"] == "app_ready" and e["received_at"] >= t0)
        resent = [e for e in entries[ready_at:] if e["msg"]["seq"] < entries[ready_at]["msg"]["seq"]]
        report(f"half-open link: {stats['messages']} messages, 0 lost, {len(resent)} sent into "
               f"the dead link and redelivered after the handshake, "
               f"{stats['duplicates_dropped']} duplicates dropped")
        assert resent
    finally:
        proxy.close()


def test_refused_connections_backoff_bounded(launcher, fresh_server):
    """The server refuses for 30 s (accepts TCP and closes at once): the gaps between
    attempts grow but stay within the cap (plus jitter); reconnects when it is back."""
    cap = 2.0
    srv = fresh_server.start()
    app_id, proc = launcher.spawn_direct("backoff", server=srv,
                                         env={"DS_BACKOFF_MIN": "100ms", "DS_BACKOFF_MAX": "2s"})
    srv.kill(signal.SIGKILL)
    refuser = socket.socket()
    refuser.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    refuser.bind(("127.0.0.1", srv.port))
    refuser.listen(64)
    refuser.settimeout(0.1)
    attempts = []
    t_end = time.monotonic() + 30
    try:
        while time.monotonic() < t_end:
            try:
                conn, _ = refuser.accept()
            except socket.timeout:
                continue
            attempts.append(time.monotonic())
            conn.close()
    finally:
        refuser.close()
    srv.start()
    # From the server answering again: its own start-up (seconds for uvicorn on a loaded
    # machine) is not the instance's to make up.
    t_back = time.monotonic()
    srv.client.wait_connected(app_id, timeout=cap + 5)
    back = time.monotonic() - t_back
    gaps = [b - a for a, b in zip(attempts, attempts[1:])]
    report(f"refused 30 s: {len(attempts)} attempts, gaps first {[round(g, 2) for g in gaps[:5]]}, "
           f"max {max(gaps):.2f}s (cap {cap}s), reconnected {back:.2f}s after the server came back")
    assert len(attempts) >= 10
    assert max(gaps) <= cap * 1.25 + 0.3
    assert min(gaps[:3]) < cap / 2  # it starts fast and backs off
    assert back <= cap * 1.25 + 3
    assert proc.poll() is None
