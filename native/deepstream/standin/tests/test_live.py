"""Live sources through the real adapter and shim on the stand-in, against the real RTSP
server of test/rtsp_server.py (docs/engine-protocol.md, "Live sources")."""
import time

from conftest import uri
from rtsp_fixture import FPS, servers  # noqa: F401 (a fixture)


# rtspsrc asks GIO for a proxy; libproxy is C++ and its exceptions trip ASan's __cxa_throw
# interceptor in a C program (the ASan run): the dummy resolver does not load it.
ENV = {"GIO_USE_PROXY_RESOLVER": "dummy"}


def event_of(slot, name):
    return lambda e: e.get("event") == name and e.get("slot") == slot


def await_progress(client, slot, pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        p = client.ok("progress")["slots"][slot]
        if pred(p):
            return p
        assert time.monotonic() < deadline, f"progress of slot {slot} never matched: {p}"
        time.sleep(0.05)


def test_rtsp_outage_resumes_on_its_slot_only(start, servers, clips, tmp_path):
    cam = servers()
    e = start(env=ENV)
    c = e.client
    c.ok("play", slot=0, file_id=1, uri=cam.url, new_camera=True,
         output_path=str(tmp_path / "live.txt"))
    c.ok("play", slot=1, file_id=2, uri=uri(clips["long"]), new_camera=True)
    c.wait_event(event_of(0, "file_started"))
    p0 = await_progress(c, 0, lambda p: p["frames"] >= FPS)
    t0 = time.monotonic()
    p1 = await_progress(c, 0, lambda p: p["frames"] >= p0["frames"] + 3 * FPS)
    rate = (p1["frames"] - p0["frames"]) / (time.monotonic() - t0)
    assert FPS * 0.85 <= rate <= FPS * 1.15, rate
    assert p1["live"]["state"] == "playing" and p1["live"]["reconnects"] == 0

    port = cam.port
    killed = time.monotonic()
    cam.kill()
    lost = c.wait_event(event_of(0, "stream_lost"))
    lost_s = time.monotonic() - killed
    assert lost["will_retry"] is True and lost["file_id"] == 1, lost
    assert lost_s < 3.0, lost_s
    again = servers(port=port)
    resumed = c.wait_event(event_of(0, "stream_resumed"), timeout=15)
    resumed_s = time.monotonic() - again.ready_at
    print(f"stand-in: {rate:.1f} frames/s; outage → stream_lost {lost_s:.3f} s; "
          f"server ready → stream_resumed {resumed_s:.3f} s; {resumed}")
    assert resumed_s < 2.0, resumed_s
    assert resumed["tracker_kept"] is True and resumed["attempts"] >= 1
    after = await_progress(c, 0, lambda p: p["frames"] >= p1["frames"] + FPS)
    assert after["live"]["reconnects"] == 1
    # The file on slot 1 played through untouched.
    done = c.wait_file_end(1, 2, timeout=30)
    assert done["event"] == "file_done" and done["frames"] == 300, done
    assert not [x for x in c.events if x.get("slot") == 1 and x["event"] != "file_started"]
    r = c.ok("stop", slot=0)
    assert r["was_playing"] and r["file_id"] == 1
    assert not [x for x in c.events if x.get("slot") == 0
                and x["event"] in ("file_done", "file_error")], c.events
    e.finish()


def test_not_found_and_refused_port(start, servers):
    cam = servers()
    e = start(env=ENV)
    c = e.client
    c.ok("play", slot=0, file_id=1, uri=f"rtsp://127.0.0.1:{cam.port}/nope")
    lost = c.wait_event(event_of(0, "stream_lost"))
    assert lost["will_retry"] is False and lost["reason"] == "rtsp: not found (404)", lost
    err = c.wait_file_end(0, 1)
    assert err["error"] == "rtsp: not found (404): not retried", err
    port = cam.port
    cam.kill()
    c.ok("play", slot=1, file_id=2, uri=f"rtsp://127.0.0.1:{port}/cam")
    lost = c.wait_event(event_of(1, "stream_lost"))
    assert lost["will_retry"] is True and lost["retry_in_ms"] == 1000, lost
    assert c.ok("progress")["slots"][1]["live"]["state"] == "reconnecting"
    r = c.ok("stop", slot=1)  # waiting to retry
    assert r["was_playing"] is True
    e.finish()
    assert not [x for x in c.events if x["event"] == "stream_lost"], c.events
