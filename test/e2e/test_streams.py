"""Cameras on slots: tracker-like reset between cameras, a live `videostream` until it is
interrupted, and 5 instances side by side without cross-talk."""
from __future__ import annotations

import glob
import json
import os
import stat
import subprocess

import harness as h
from harness import EOS, file_item, start_body


def test_reset_between_cameras_continuity_within(launcher, clips):
    c = launcher.client
    app_id = launcher.launch("reset")
    oa, ob = launcher.out_dir(app_id, 41), launcher.out_dir(app_id, 42)
    fa = [file_item(410 + i, clips[f"c{i}"], oa) for i in range(3)]
    fb = [file_item(420 + i, clips[f"c{i + 3}"], ob) for i in range(2)]
    c.start(app_id, **start_body(1, 41, "fileset", oa, init=fa[0]))
    c.start(app_id, **start_body(1, 42, "fileset", ob, init=fb[0]))  # queued behind 41
    c.push(app_id, 1, 42, fb[1:] + [EOS], ack_wait=0)  # everything of the queued camera, eos included
    c.push(app_id, 1, 41, fa[1:], ack_wait=0)
    c.push(app_id, 1, 41, [EOS], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 42)
    cam_a = [r[0] for f in fa for r in h.read_output(f["output_path"])]
    cam_b = [r[0] for f in fb for r in h.read_output(f["output_path"])]
    assert cam_a == list(range(90))  # continuous over the 3 files of camera 41
    assert cam_b == list(range(60))  # restarted at 0 for camera 42
    for f in fa + fb:
        rows = h.read_output(f["output_path"])
        pts = [r[2] for r in rows]
        assert pts == sorted(pts) and pts[0] >= 0


def test_videostream_until_interrupted(launcher, live_uri, clips):
    c = launcher.client
    app_id = launcher.launch("live")
    out = launcher.out_dir(app_id, 51)
    uri = live_uri
    init = {"file_type": "videostream", "file_id": 51, "file_path": uri, "file_name": "live-cam",
            "output_path": os.path.join(out, "51.txt")}
    r = c.start(app_id, **start_body(0, 51, "videostream", out, init=init, camera_path=uri))
    assert r["status"] == "ok"
    ps = c.wait_message(app_id, lambda m: m["type"] == "processing_started" and m["camera_id"] == 51)
    assert ps["file_id"] == 51 and ps["request_id"] == r["request_id"]
    # frames keep coming at the live rate: > 2 s of video analysed, still running
    h.wait_until(lambda: os.path.exists(init["output_path"]) and
                 len(h.read_output(init["output_path"])) >= 60, 20, "60 live frames")
    st = c.status(app_id, 0, 51)["camera"]
    assert st["status"] == "running"
    assert [p["file_id"] for p in st["files"]["processing"]] == [51]
    assert not [m for m in c.msgs(app_id, types="analysis_complete,file_done,file_error")
                if m.get("camera_id") == 51]
    r = c.interrupt(app_id, 0, 51)
    assert r["status"] == "ok" and r["message"] == "Analysis on stream 0 (camera 51) interrupted and reset."
    assert c.status(app_id, 0)["stream"] == {"stream_id": 0, "status": "idle", "cameras": []}
    frames = [row[0] for row in h.read_output(init["output_path"])]
    assert frames == list(range(len(frames)))
    # the slot takes the next camera at once
    out2 = launcher.out_dir(app_id, 52)
    r2 = c.start(app_id, **start_body(0, 52, "file", out2, init=file_item(52, clips["c0"], out2)))
    assert r2["status"] == "ok"
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 52)
    assert [row[0] for row in h.read_output(os.path.join(out2, "52.txt"))] == list(range(30))


def test_five_instances_no_cross_talk(launcher, clips, root):
    c = launcher.client
    ids = [launcher.launch("multi", slots=2, wait=False) for _ in range(5)]
    for app_id in ids:
        c.wait_connected(app_id, timeout=60)
    recs = {a: c.instance(a) for a in ids}
    # the same camera_id on every instance, distinct file ids per instance
    for n, app_id in enumerate(ids):
        out = launcher.out_dir(app_id, 600)
        files = [file_item(6000 + 10 * n + i, clips[f"c{(n + i) % 6}"], out) for i in range(2)]
        assert c.start(app_id, **start_body(n % 2, 600, "fileset", out, init=files[0]))["status"] == "ok"
        c.push(app_id, n % 2, 600, files[1:] + [EOS], ack_wait=0)
    for n, app_id in enumerate(ids):
        done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete", timeout=60)
        assert done["processed_count"] == 2 and done["stream_id"] == n % 2
        evs = c.msgs(app_id, types="processing_started,file_done")
        assert sorted({e["file_id"] for e in evs}) == [6000 + 10 * n, 6000 + 10 * n + 1]
        assert all(e["stream_id"] == n % 2 and e["camera_id"] == 600 for e in evs)
        assert c.msgs(app_id, types="app_ready")[0]["instance_id"] == app_id
    pids = {recs[a]["process_id"] for a in ids}
    assert len(pids) == 5
    inst_root = os.path.join(root, "inst")
    sockets, states = set(), set()
    for app_id in ids:
        pid = recs[app_id]["process_id"]
        d = os.path.join(inst_root, app_id)
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
        socks = [p for p in glob.glob(os.path.join(d, "*")) if stat.S_ISSOCK(os.stat(p).st_mode)]
        assert len(socks) == 1
        sockets.add(socks[0])
        state_path = os.path.join(d, "state.json")
        with open(state_path) as fh:
            snap = json.load(fh)
        assert isinstance(snap, dict)
        states.add(state_path)
        logs = glob.glob(os.path.join(root, "logs", f"instid_{app_id}-pid_{pid}-date_*",
                                      f"instid_{app_id}-pid_{pid}-date_*.log"))
        assert len(logs) == 1
        with open(f"/proc/{pid}/comm") as fh:
            assert fh.read().strip() == app_id[:15]
        found = subprocess.run(["pgrep", "-f", f"APP_ID={app_id}( |$)"], capture_output=True,
                               text=True).stdout.split()
        # the supervisor, plus the bash wrapper of the spec's launch line when it stayed
        assert str(pid) in found
        assert all("ds-gst-engine" not in h.cmdline(int(p)) for p in found)
        assert len(h.engine_pids(pid)) == 1
    assert len(sockets) == 5 and len(states) == 5
