"""Live cameras over RTSP through the supervisor and the reference server, against the real
RTSP server of test/rtsp_server.py: a stream that plays at the source's rate, the server
killed and started again on the same port (stream_lost, then stream_resumed, the camera
goes on), a path that 404s and wrong credentials (the camera ends), an interrupt while
reconnecting (server killed, or a refused port), and three live cameras beside a file
camera where one outage touches that camera only."""
from __future__ import annotations

import os
import time
from typing import List, Optional

import pytest

import harness as h
import livecam
from harness import EOS, file_item, start_body
from refserver import models as m

FPS = 30


@pytest.fixture
def rtsp():
    """Returns a function (path, auth) → a started livecam.RtspCamera; each is killed at the end."""
    made: List[livecam.RtspCamera] = []

    def new(path: str = "cam", auth: Optional[List[str]] = None) -> livecam.RtspCamera:
        srv = livecam.RtspCamera(path, fps=FPS, auth=auth)
        made.append(srv)
        return srv.start()
    yield new
    for srv in made:
        srv.kill()


def live_item(file_id: int, uri: str, out_dir: str) -> dict:
    return {"file_type": "videostream", "file_id": file_id, "file_path": uri,
            "file_name": f"live-{file_id}", "output_path": os.path.join(out_dir, f"{file_id}.txt")}


def start_live(c, app_id: str, stream_id: int, camera_id: int, uri: str, out_dir: str) -> dict:
    init = live_item(camera_id, uri, out_dir)
    r = c.start(app_id, **start_body(stream_id, camera_id, "videostream", out_dir, init=init, camera_path=uri))
    assert r["status"] == "ok", r
    return init


def live_status(c, app_id: str, stream_id: int, camera_id: int) -> Optional[dict]:
    st = c.status(app_id, stream_id, camera_id)
    proc = st["camera"]["files"]["processing"]
    assert len(proc) == 1, st
    m.parse_app_message(st)
    return proc[0].get("live")


def events_of(c, app_id: str, camera_id: int, types: str) -> List[dict]:
    return [e for e in c.msgs(app_id, types=types) if e.get("camera_id") == camera_id]


def live_state(c, app_id: str, stream_id: int, camera_id: int) -> str:
    return (live_status(c, app_id, stream_id, camera_id) or {}).get("state", "")


def sample_fps(c, app_id: str, stream_id: int, camera_id: int, n: int = 5) -> List[float]:
    """The engine's frame rate (frames of the last 2 s), once a second: the rate is a
    measurement over time, so this waits on the clock."""
    out = []
    for _ in range(n):
        time.sleep(1)
        out.append(live_status(c, app_id, stream_id, camera_id)["fps"])
    return out


def test_live_camera_survives_a_server_restart(launcher, rtsp):
    """Plays at the source's rate; the server killed mid-stream → stream_lost within 3 s;
    started again on the same port → stream_resumed within 2 s of it answering; frames
    continue and the camera is not ended; the status shows the live state move."""
    c = launcher.client
    app_id = launcher.launch("live-restart", slots=1)
    srv = rtsp("cam")
    out = launcher.out_dir(app_id, 71)
    init = start_live(c, app_id, 0, 71, srv.uri, out)
    c.wait_message(app_id, lambda e: e["type"] == "processing_started" and e["camera_id"] == 71)
    h.wait_until(lambda: live_state(c, app_id, 0, 71) == "playing", 20, "live state playing")
    t_first = time.monotonic()
    rates = sorted(sample_fps(c, app_id, 0, 71))
    assert FPS * 0.9 <= rates[len(rates) // 2] <= FPS * 1.1, rates
    live = live_status(c, app_id, 0, 71)
    assert live["reconnects"] == 0, live
    assert live["last_frame_age_ms"] is not None and live["last_frame_age_ms"] < 1000, live

    mark = c.next_index(app_id)
    srv.kill()
    t_kill = time.monotonic()
    lost = c.wait_message(app_id, lambda e: e["type"] == "stream_lost" and e["camera_id"] == 71,
                          since=mark, timeout=10)
    lost_s = time.monotonic() - t_kill
    assert lost_s <= 3, lost_s
    m.parse_app_message(lost)
    assert lost["will_retry"] is True and lost["stream_id"] == 0 and lost["file_id"] == 71
    assert lost["request_id"] == c.msgs(app_id, types="processing_started")[-1]["request_id"]
    h.wait_until(lambda: live_state(c, app_id, 0, 71) == "reconnecting", 5, "live state reconnecting")

    srv.start()
    t_up = time.monotonic()
    resumed = c.wait_message(app_id, lambda e: e["type"] == "stream_resumed" and e["camera_id"] == 71,
                             since=mark, timeout=35)
    resumed_s = time.monotonic() - t_up
    m.parse_app_message(resumed)
    assert resumed_s <= 2, resumed_s
    assert resumed["attempts"] >= 1 and resumed["down_ms"] >= lost_s * 1000 * 0.5, resumed
    h.wait_until(lambda: live_state(c, app_id, 0, 71) == "playing", 5, "live state playing again")
    rates = sorted(sample_fps(c, app_id, 0, 71, 3))
    live = live_status(c, app_id, 0, 71)
    assert rates[-1] >= FPS * 0.5 and live["reconnects"] == 1 and live["last_frame_age_ms"] < 1000, (rates, live)
    assert not events_of(c, app_id, 71, "file_error,file_done,analysis_complete")

    r = c.interrupt(app_id, 0, 71)
    played = time.monotonic() - t_first - resumed["down_ms"] / 1000
    assert r["status"] == "ok", r
    assert c.status(app_id, 0)["stream"]["status"] == "idle"
    rows = h.read_output(init["output_path"])  # complete once the file is stopped
    assert [r[1] for r in rows] == list(range(len(rows)))
    assert len(rows) >= FPS * played * 0.8, (len(rows), played)
    print(f"\nlive outage: stream_lost {lost_s:.2f} s after the kill, stream_resumed "
          f"{resumed_s:.2f} s after the restart (down_ms {resumed['down_ms']}, "
          f"attempts {resumed['attempts']}); {len(rows)} frames over {played:.1f} s of playing")


@pytest.mark.parametrize("case", ["404", "401"])
def test_refused_stream_ends_the_camera(launcher, rtsp, case):
    """A path the server does not have (404), or no credentials where it wants them (401):
    stream_lost without retry, file_error, and the camera ends with analysis_complete
    failed_count 1 at once (no reconnect loop)."""
    c = launcher.client
    app_id = launcher.launch(f"live-{case}", slots=1)
    if case == "404":
        srv = rtsp("cam")
        uri, want = f"rtsp://127.0.0.1:{srv.port}/nothing-here", "rtsp: not found (404): not retried"
    else:
        srv = rtsp("cam", auth=["viewer", "s3cret"])
        uri, want = srv.uri, "rtsp: unauthorized (401): not retried"
    out = launcher.out_dir(app_id, 72)
    t0 = time.monotonic()
    start_live(c, app_id, 0, 72, uri, out)
    done = c.wait_message(app_id, lambda e: e["type"] == "analysis_complete" and e["camera_id"] == 72,
                          timeout=20)
    took = time.monotonic() - t0
    assert done["processed_count"] == 0 and done["failed_count"] == 1, done
    evs = [e for e in c.msgs(app_id) if e.get("camera_id") == 72 and
           e["type"] in ("stream_lost", "stream_resumed", "file_error", "file_done")]
    assert [e["type"] for e in evs] == ["stream_lost", "file_error"], evs
    assert evs[0]["will_retry"] is False and evs[1]["error_reason"] == want, evs
    assert took < 10, took
    print(f"\n{case}: analysis_complete {took:.2f} s after start_analysis: {want!r}")


@pytest.mark.parametrize("case", ["killed", "refused"])
def test_interrupt_while_reconnecting(launcher, rtsp, clips, case):
    """The server gone for good (killed mid-stream), or never there (a refused port: an
    outage like any other): the camera waits to retry; interrupt_analysis answers at once,
    the slot goes idle and takes the next camera."""
    c = launcher.client
    app_id = launcher.launch(f"live-int-{case}", slots=1)
    out = launcher.out_dir(app_id, 73)
    mark = c.next_index(app_id)
    if case == "killed":
        srv = rtsp("cam")
        start_live(c, app_id, 0, 73, srv.uri, out)
        h.wait_until(lambda: live_state(c, app_id, 0, 73) == "playing", 20, "live state playing")
        mark = c.next_index(app_id)
        srv.kill()
    else:
        start_live(c, app_id, 0, 73, f"rtsp://127.0.0.1:{h.free_port()}/cam", out)
    lost = c.wait_message(app_id, lambda e: e["type"] == "stream_lost" and e["camera_id"] == 73,
                          since=mark, timeout=10)
    assert lost["will_retry"] is True, lost
    h.wait_until(lambda: live_state(c, app_id, 0, 73) == "reconnecting", 5, "live state reconnecting")
    t0 = time.monotonic()
    r = c.interrupt(app_id, 0, 73)
    took = time.monotonic() - t0
    assert r["status"] == "ok", r
    assert took < 1.0, took
    assert c.status(app_id, 0)["stream"] == {"stream_id": 0, "status": "idle", "cameras": []}
    out2 = launcher.out_dir(app_id, 74)
    assert c.start(app_id, **start_body(0, 74, "file", out2, init=file_item(74, clips["c0"], out2)))["status"] == "ok"
    done = c.wait_message(app_id, lambda e: e["type"] == "analysis_complete" and e["camera_id"] == 74)
    assert done["processed_count"] == 1 and done["failed_count"] == 0
    assert not events_of(c, app_id, 73, "file_error,analysis_complete,stream_resumed")
    print(f"\ninterrupt while reconnecting ({case}) answered in {took * 1000:.0f} ms")


def test_three_live_cameras_and_a_file_camera(launcher, rtsp, clips):
    """Three live cameras on three slots and a file camera on the fourth: an outage of one
    stream reaches that camera only; the others keep their frames, the file camera
    completes every file."""
    c = launcher.client
    app_id = launcher.launch("live-four", slots=4)
    servers = [rtsp(f"cam{i}") for i in range(3)]
    for i, srv in enumerate(servers):
        start_live(c, app_id, i, 80 + i, srv.uri, launcher.out_dir(app_id, 80 + i))
    for i in range(3):
        h.wait_until(lambda: live_state(c, app_id, i, 80 + i) == "playing", 30, f"camera {80 + i} playing")
    mark = c.next_index(app_id)
    servers[1].kill()
    c.wait_message(app_id, lambda e: e["type"] == "stream_lost" and e["camera_id"] == 81, since=mark, timeout=10)
    h.wait_until(lambda: live_state(c, app_id, 1, 81) == "reconnecting", 5, "camera 81 reconnecting")
    # the file camera plays its files from start to end inside the outage
    fout = launcher.out_dir(app_id, 90)
    files = [file_item(900 + i, clips["long" if i == 0 else f"c{i}"], fout) for i in range(3)]
    assert c.start(app_id, **start_body(3, 90, "fileset", fout, init=files[0]))["status"] == "ok"
    c.push(app_id, 3, 90, files[1:] + [EOS], ack_wait=0)
    done = c.wait_message(app_id, lambda e: e["type"] == "analysis_complete" and e["camera_id"] == 90,
                          timeout=60)
    assert done["processed_count"] == 3 and done["failed_count"] == 0, done
    assert [len(h.read_output(f["output_path"])) for f in files] == [900, 30, 30]
    assert live_state(c, app_id, 1, 81) == "reconnecting"
    for k in (0, 2):  # the other live cameras play on through the outage
        live = live_status(c, app_id, k, 80 + k)
        assert live["state"] == "playing" and live["last_frame_age_ms"] < 1000 and live["fps"] > 0, (k, live)
    servers[1].start()
    c.wait_message(app_id, lambda e: e["type"] == "stream_resumed" and e["camera_id"] == 81,
                   since=mark, timeout=35)
    outage = [e for e in c.msgs(app_id, since=mark)
              if e["type"] in ("stream_lost", "stream_resumed", "file_error")]
    assert [(e["type"], e["camera_id"]) for e in outage] == [("stream_lost", 81), ("stream_resumed", 81)], outage
    assert not [e for e in c.msgs(app_id, types="analysis_complete") if e["camera_id"] in (80, 81, 82)]
    for i in range(3):
        live = live_status(c, app_id, i, 80 + i)
        assert live["state"] == "playing" and live["reconnects"] == (1 if i == 1 else 0), (i, live)
