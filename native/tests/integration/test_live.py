"""Live sources: ds-gst-engine against the real RTSP server of test/rtsp_server.py
(docs/engine-protocol.md, "Live sources")."""
import os
import socket
import threading
import time

import pytest

from conftest import uri
from engine_client import Engine
from rtsp_fixture import FPS, servers  # noqa: F401 (a fixture)


def live_config(path, slots, keys=None):
    """A deepstream-app config of `slots` type=3 groups; keys: {slot: {key: value}}."""
    lines = ["[application]", "enable-perf-measurement=0", ""]
    for i in range(slots):
        lines += [f"[source{i}]", "enable=1", "type=3", "uri=file:///dev/null", "num-sources=1"]
        lines += [f"{k}={v}" for k, v in (keys or {}).get(i, {}).items()]
        lines.append("")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return str(path)


@pytest.fixture
def start_engine(engine_bin, tmp_path):
    started = []

    def start(slots, keys=None):
        cfg = live_config(tmp_path / f"live{len(started)}.txt", slots, keys)
        e = Engine(engine_bin, cfg, tmp_path)
        c = e.connect()
        started.append((e, c))
        return c

    yield start
    for e, c in started:
        c.close()
        e.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def event_of(slot, name):
    return lambda e: e.get("event") == name and e.get("slot") == slot


def slot_progress(client, slot):
    return client.ok("progress")["slots"][slot]


def await_progress(client, slot, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        p = slot_progress(client, slot)
        if pred(p):
            return p
        if time.monotonic() > deadline:
            raise AssertionError(f"progress of slot {slot} never matched: {p}")
        time.sleep(0.05)


def no_end_events(client, slot):
    ends = [e for e in client.events
            if e.get("slot") == slot and e["event"] in ("file_done", "file_error")]
    assert not ends, ends


def test_rtsp_plays_at_the_source_rate(start_engine, servers, tmp_path):
    server = servers()
    c = start_engine(1)
    out = str(tmp_path / "live.txt")
    c.ok("play", slot=0, file_id=1, uri=server.url, new_camera=True, output_path=out)
    c.wait_event(event_of(0, "file_started"))
    # Measured between two progress answers once the jitter buffer has filled.
    p0 = await_progress(c, 0, lambda p: p["frames"] >= FPS)
    t0 = time.monotonic()
    time.sleep(10)
    p1 = slot_progress(c, 0)
    rate = (p1["frames"] - p0["frames"]) / (time.monotonic() - t0)
    print(f"rtsp: {rate:.2f} frames/s over 10 s, live {p1['live']}")
    assert FPS * 0.9 <= rate <= FPS * 1.1
    live = p1["live"]
    assert live["state"] == "playing" and live["reconnects"] == 0
    assert FPS * 0.8 <= live["fps"] <= FPS * 1.2
    assert 0 <= live["last_frame_age_ms"] < 1000
    assert p1["state"] == "playing" and p1["file_id"] == 1
    no_end_events(c, 0)
    r = c.ok("stop", slot=0)
    assert r["was_playing"] and r["file_id"] == 1
    with open(out) as f:
        assert sum(1 for _ in f) == r["frames"]
    assert "live" not in slot_progress(c, 0)
    assert not c.events, c.events


def test_server_restart_resumes_the_stream(start_engine, servers):
    server = servers()
    port = server.port
    c = start_engine(1)
    c.ok("play", slot=0, file_id=7, uri=server.url, new_camera=True)
    c.wait_event(event_of(0, "file_started"))
    before = await_progress(c, 0, lambda p: p["frames"] >= FPS)
    killed = time.monotonic()
    server.kill()
    lost = c.wait_event(event_of(0, "stream_lost"))
    lost_s = time.monotonic() - killed
    assert lost["file_id"] == 7 and lost["will_retry"] is True, lost
    assert lost["attempt"] == 1 and lost["retry_in_ms"] == 1000, lost
    assert lost_s < 3.0, lost_s
    assert slot_progress(c, 0)["live"]["state"] == "reconnecting"

    again = servers(port=port)
    resumed = c.wait_event(event_of(0, "stream_resumed"), timeout=15)
    resumed_s = time.monotonic() - again.ready_at
    print(f"outage → stream_lost {lost_s:.3f} s; server ready → stream_resumed "
          f"{resumed_s:.3f} s; {resumed}; earlier losses {c.events}")
    assert resumed_s < 2.0, resumed_s
    assert resumed["file_id"] == 7 and resumed["tracker_kept"] is True
    assert resumed["attempts"] >= 1 and resumed["down_ms"] > 0
    after = await_progress(c, 0, lambda p: p["frames"] >= before["frames"] + FPS)
    # The camera state was kept: its frame index went on from before the outage.
    assert after["camera_frames"] == after["frames"]
    assert after["live"]["reconnects"] == 1 and after["live"]["state"] == "playing"
    no_end_events(c, 0)
    assert c.ok("stop", slot=0)["was_playing"]


def test_refused_port_is_retried_with_backoff_then_given_up(start_engine):
    port = free_port()
    c = start_engine(1, {0: {"rtsp-reconnect-attempts": 2}})
    c.ok("play", slot=0, file_id=3, uri=f"rtsp://127.0.0.1:{port}/cam")
    first = c.wait_event(event_of(0, "stream_lost"))
    assert first["will_retry"] is True and first["attempt"] == 1
    assert first["retry_in_ms"] == 1000
    p = slot_progress(c, 0)
    assert p["live"]["state"] == "reconnecting" and p["live"]["last_frame_age_ms"] is None
    second = c.wait_event(event_of(0, "stream_lost"))
    assert second["will_retry"] is True and second["attempt"] == 2
    assert second["retry_in_ms"] == 2000
    last = c.wait_event(event_of(0, "stream_lost"), timeout=15)
    assert last["will_retry"] is False and last["attempt"] == 2
    err = c.wait_event(event_of(0, "file_error"))
    assert err["file_id"] == 3
    assert err["error"].startswith("stream lost: ") and err["error"].endswith(
        "(gave up after 2 attempts)"), err
    assert slot_progress(c, 0)["state"] == "idle"


def test_not_found_and_wrong_credentials_are_not_retried(start_engine, servers):
    server = servers(user="viewer", password="secret")
    base = f"rtsp://viewer:secret@127.0.0.1:{server.port}"
    c = start_engine(3)
    c.ok("play", slot=0, file_id=10, uri=base + "/nope")
    c.ok("play", slot=1, file_id=11, uri=f"rtsp://viewer:wrong@127.0.0.1:{server.port}/cam")
    c.ok("play", slot=2, file_id=12, uri=server.url)  # no credentials at all
    expect = {0: "rtsp: not found (404)", 1: "rtsp: unauthorized (401)",
              2: "rtsp: unauthorized (401)"}
    for slot, reason in expect.items():
        lost = c.wait_event(event_of(slot, "stream_lost"))
        assert lost["will_retry"] is False and lost["reason"] == reason, lost
        err = c.wait_event(event_of(slot, "file_error"))
        assert err["error"] == reason + ": not retried", err
    # The right credentials play.
    c.ok("play", slot=0, file_id=13, uri=base + "/cam")
    c.wait_event(event_of(0, "file_started"))
    assert c.ok("stop", slot=0)["was_playing"]
    assert not [e for e in c.events if e["event"] == "stream_lost"], c.events


def test_stop_while_waiting_to_retry(start_engine, clips):
    port = free_port()
    c = start_engine(1, {0: {"rtsp-reconnect-interval-sec": 2}})
    c.ok("play", slot=0, file_id=5, uri=f"rtsp://127.0.0.1:{port}/cam")
    lost = c.wait_event(event_of(0, "stream_lost"))
    assert lost["retry_in_ms"] == 2000
    r = c.ok("stop", slot=0)
    assert r["was_playing"] is True and r["file_id"] == 5
    assert slot_progress(c, 0)["state"] == "idle"
    # The retry would have come within 2 s: nothing comes.
    with pytest.raises(TimeoutError):
        c.wait_event(lambda e: True, timeout=3)
    # The slot is as good as new.
    c.ok("play", slot=0, file_id=6, uri=uri(clips["a"]), new_camera=True)
    assert c.wait_file_end(0, 6)["event"] == "file_done"


def test_an_outage_touches_its_slot_only(start_engine, servers, clips):
    cams = [servers(), servers(), servers()]
    c = start_engine(4)
    for i, s in enumerate(cams):
        c.ok("play", slot=i, file_id=100 + i, uri=s.url, new_camera=True)
    for i in range(3):
        c.wait_event(event_of(i, "file_started"))
    c.ok("play", slot=3, file_id=200, uri=uri(clips["long"]), new_camera=True)
    port = cams[1].port
    cams[1].kill()
    c.wait_event(event_of(1, "stream_lost"))
    before = c.ok("progress")["slots"]
    servers(port=port)
    c.wait_event(event_of(1, "stream_resumed"), timeout=15)
    done = c.wait_file_end(3, 200, timeout=30)
    assert done["event"] == "file_done" and done["frames"] == 300
    after = await_progress(c, 1, lambda p: p["frames"] > before[1]["frames"] + FPS)
    slots = c.ok("progress")["slots"]
    for i in (0, 2):
        assert slots[i]["frames"] > before[i]["frames"] + FPS // 2
        assert slots[i]["live"]["reconnects"] == 0 and slots[i]["live"]["state"] == "playing"
    assert after["live"]["reconnects"] == 1
    others = [e for e in c.events if e.get("slot") in (0, 2)
              and e["event"] in ("stream_lost", "stream_resumed", "file_error", "file_done")]
    assert not others, others
    assert "live" not in slots[3]
    for i in range(3):
        assert c.ok("stop", slot=i)["was_playing"]


def test_http_source_is_live_refused_and_stalled(start_engine, clips):
    # An HTTP server that sends the first kilobyte of a clip, then nothing more: a stall.
    with open(clips["a"], "rb") as f:
        data = f.read()
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    done = threading.Event()
    conns = []

    def serve():
        srv.settimeout(20)
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        conns.append(conn)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(data) + data[:1000])
        done.wait(30)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    c = start_engine(2, {1: {"live-stall-sec": 1, "rtsp-reconnect-attempts": 0}})
    try:
        # Nothing listening: an outage, retried.
        c.ok("play", slot=0, file_id=1, uri=f"http://127.0.0.1:{free_port()}/x.mp4")
        lost = c.wait_event(event_of(0, "stream_lost"))
        assert lost["will_retry"] is True and lost["attempt"] == 1, lost
        assert c.ok("stop", slot=0)["was_playing"]
        port = srv.getsockname()[1]
        c.ok("play", slot=1, file_id=2, uri=f"http://127.0.0.1:{port}/a.mp4", new_camera=True)
        lost = c.wait_event(event_of(1, "stream_lost"))
        assert lost == {"event": "stream_lost", "slot": 1, "file_id": 2,
                        "reason": "no video frame within 1000 ms", "will_retry": False,
                        "attempt": 0, "retry_in_ms": 0}, lost
        ev = c.wait_file_end(1, 2)
        assert ev["event"] == "file_error" and ev["error"] == (
            "stream lost: no video frame within 1000 ms (gave up after 0 attempts)"), ev
        ev = c.ok("play", slot=1, file_id=3, uri=uri(clips["a"]))
        assert c.wait_file_end(1, 3)["event"] == "file_done"
    finally:
        done.set()
        for conn in conns:
            conn.close()
        srv.close()
        t.join(5)


def test_live_paths_leak_nothing(servers, tmp_path):
    asan = os.environ.get("DS_GST_ENGINE_ASAN")
    if not asan:
        pytest.skip("DS_GST_ENGINE_ASAN not set: `make -C native test` sets it")
    supp = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lsan.supp")
    env = {
        "G_SLICE": "always-malloc", "G_DEBUG": "gc-friendly",
        "ASAN_OPTIONS": "detect_leaks=1:exitcode=99:fast_unwind_on_malloc=0:"
                        "malloc_context_size=8",
        "LSAN_OPTIONS": f"suppressions={supp}:print_suppressions=0:exitcode=98",
        # rtspsrc asks GIO for a proxy; libproxy is C++ and its exceptions trip ASan's
        # __cxa_throw interceptor in a C program: the dummy resolver does not load it.
        "GIO_USE_PROXY_RESOLVER": "dummy",
    }
    server = servers(user="u", password="p")
    good = f"rtsp://u:p@127.0.0.1:{server.port}/cam"
    cfg = live_config(tmp_path / "asan.txt", 2, {1: {"rtsp-reconnect-interval-sec": 3}})
    e = Engine(asan, cfg, tmp_path, env=env)
    try:
        c = e.connect(timeout=60)
        c.timeout = 30
        c.ok("play", slot=0, file_id=1, uri=good, output_path=str(tmp_path / "o.txt"))
        c.ok("play", slot=1, file_id=2, uri=f"rtsp://127.0.0.1:{free_port()}/cam")
        c.wait_event(event_of(0, "file_started"))
        c.wait_event(event_of(1, "stream_lost"))
        port = server.port
        server.kill()
        c.wait_event(event_of(0, "stream_lost"))
        server = servers(port=port, user="u", password="p")
        c.wait_event(event_of(0, "stream_resumed"))
        c.ok("progress")
        assert c.ok("stop", slot=1)["was_playing"]  # waiting to retry
        assert c.ok("stop", slot=0)["was_playing"]  # playing
        c.ok("play", slot=0, file_id=3, uri=f"rtsp://u:p@127.0.0.1:{port}/nope")
        assert c.wait_file_end(0, 3)["error"] == "rtsp: not found (404): not retried"
        c.ok("play", slot=1, file_id=4, uri=good)  # left connecting or playing at shutdown
        c.ok("shutdown")
        rc = e.wait(timeout=60)
    finally:
        e.stop()
    log = e.log()
    assert "Sanitizer" not in log, log[-20000:]
    assert rc == 0, log[-5000:]
