"""Every flow of spec §2.3.1–§2.3.7 against a real instance (supervisor + GStreamer engine),
with each reply checked field by field."""
from __future__ import annotations

import datetime as dt
import os
import subprocess

import harness as h
from harness import EOS, file_item, start_body


def iso_with_offset(text: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"{text!r} has no UTC offset"
    return t


def events_of(client, app_id, camera_id, types="processing_started,file_done,file_error,analysis_complete"):
    return [m for m in client.msgs(app_id, types=types) if m.get("camera_id") == camera_id]


def test_execute_app_handshake(launcher, config):
    """§2.3.1: app_ready carries every field of the spec, matching the launch."""
    c = launcher.client
    app_id = launcher.launch("hello")
    rec = c.instance(app_id)
    ready = c.msgs(app_id, types="app_ready")[0]
    assert ready["type"] == "app_ready"
    assert isinstance(ready["request_id"], str) and ready["request_id"]
    assert ready["instance_id"] == app_id
    assert ready["config_path"] == config(3)  # exactly as given on the command line
    assert ready["process_id"] == rec["process_id"] and h.alive(ready["process_id"])
    assert ready["streams_count"] == 3
    assert ready["status"] == "ok"
    assert isinstance(ready["version"], str) and ready["version"]
    assert ready["gpu_allocated"] == [0]
    started = iso_with_offset(ready["start_time"])
    assert abs((dt.datetime.now(dt.timezone.utc) - started).total_seconds()) < 120
    assert isinstance(ready["seq"], int) and ready["seq"] >= 1
    # §2.2 state record
    assert rec["status"] == "running" and rec["ws_status"] == "connected"
    assert rec["pid"] and rec["launched_at"] and rec["log_path"]
    # The watchdog path of §2.2 finds exactly this instance's supervisor.
    found = c.watchdog(app_id, "pgrep")
    assert ready["process_id"] in found["pids"]
    assert all("ds-gst-engine" not in h.cmdline(p) for p in found["pids"])


def test_execute_ack_rejected_exits_4(launcher, server, root, config, binaries):
    """A CONFIG_MISMATCH or STREAMS_COUNT_MISMATCH ack makes the instance exit 4."""
    c = launcher.client
    # streams_count the server expects differs from the config's 3
    app_id = launcher.new_id("mism")
    launcher.launched.append((c, app_id))
    c.launch(app_id, config(3), env=h.instance_env(root), streams_count=5)
    rec = c.wait_exit(app_id, timeout=30)
    assert rec["status"] == "rejected" and rec["ack_error"] == "STREAMS_COUNT_MISMATCH"
    assert rec["exit_code"] == 4

    # registered with one config, started (outside the server) with another
    other = launcher.new_id("mism")
    c.launch(other, config(3), launch=False)
    env = {**os.environ, **h.instance_env(root), "APP_ID": other, "DS_WS_URL": server.ws_url,
           "DS_ENGINE": h.ENGINE}
    proc = subprocess.Popen([h.SUPERVISOR, "-c", config(2)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    launcher.own(proc.pid)
    assert proc.wait(timeout=30) == 4
    assert c.instance(other)["ack_error"] == "CONFIG_MISMATCH"


def test_fileset_camera_batches_late_eos(launcher, clips):
    """§2.3.2 + §2.3.3: start with init_file, two push batches, eos in its own late push;
    events per file in real time with the request_id that delivered the file; the
    camera frame index continues across the camera's files."""
    c = launcher.client
    app_id = launcher.launch("fileset")
    cam = 1001
    out = launcher.out_dir(app_id, cam)
    files = [file_item(2000 + i, clips[f"c{i}"], out) for i in range(4)]
    reply = c.start(app_id, **start_body(0, cam, "fileset", out, init=files[0], camera_path=os.path.dirname(clips["c0"])))
    assert set(reply) >= {"type", "request_id", "stream_id", "camera_id", "status", "message"}
    assert reply["type"] == "analysis_started" and reply["status"] == "ok"
    assert reply["stream_id"] == 0 and reply["camera_id"] == cam
    assert reply["message"] == f"Stream 0 for camera {cam} analysis started"
    assert "error_reason" not in reply
    assert os.path.isdir(out)
    start_rid = reply["request_id"]

    p1 = c.push(app_id, 0, cam, files[1:3], ack_wait=0.3)
    assert p1["push_ack"] is None  # push_ack only on error
    c.wait_message(app_id, lambda m: m["type"] == "file_done" and m["file_id"] == files[2]["file_id"],
                   what="file_done of the first batch")
    p2 = c.push(app_id, 0, cam, files[3:], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "file_done" and m["file_id"] == files[3]["file_id"],
                   what="file_done of the second batch")
    # nothing completes before the eos item
    assert not events_of(c, app_id, cam, "analysis_complete")
    st = c.status(app_id, 0, cam)
    assert st["camera"]["status"] == "running" and st["camera"]["files"]["completed_count"] == 4
    p3 = c.push(app_id, 0, cam, [EOS], ack_wait=0)
    done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == cam,
                          what="analysis_complete")
    assert done["request_id"] == p3["request_id"]
    assert done["stream_id"] == 0 and done["status"] == "done"
    assert done["processed_count"] == 4 and done.get("failed_count", 0) == 0
    assert done["message"] == f"Analysis for camera {cam} complete. Stream 0 is free."

    evs = events_of(c, app_id, cam)
    expect_rid = {files[0]["file_id"]: start_rid, files[1]["file_id"]: p1["request_id"],
                  files[2]["file_id"]: p1["request_id"], files[3]["file_id"]: p2["request_id"]}
    want = []
    for f in files:
        want += [("processing_started", f["file_id"]), ("file_done", f["file_id"])]
    want.append(("analysis_complete", None))
    assert [(e["type"], e.get("file_id")) for e in evs] == want
    for e in evs[:-1]:
        assert e["stream_id"] == 0 and e["camera_id"] == cam
        assert e["request_id"] == expect_rid[e["file_id"]]
        name = os.path.basename(next(f["file_path"] for f in files if f["file_id"] == e["file_id"]))
        assert e["current_file" if e["type"] == "processing_started" else "processed_file"] == name
    seqs = [e["seq"] for e in evs]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # per-file output: 30 frames each, camera frame index continuous over the 4 files
    frames = []
    for f in files:
        rows = h.read_output(f["output_path"])
        assert [r[1] for r in rows] == list(range(30))
        frames += [r[0] for r in rows]
    assert frames == list(range(120))
    # the slot is free again
    assert c.status(app_id, 0)["stream"] == {"stream_id": 0, "status": "idle", "cameras": []}


def check_camera(cam, camera_id, status, processing, completed, queued_ids):
    assert set(cam) >= {"camera_id", "status", "files"}
    assert cam["camera_id"] == camera_id and cam["status"] == status
    files = cam["files"]
    assert set(files) >= {"processing", "completed_count", "queued_count", "queued"}
    assert [p["file_id"] for p in files["processing"]] == processing
    for p in files["processing"]:
        assert set(p) >= {"file_id", "file_name", "progress_pct"}
        assert 0.0 <= p["progress_pct"] <= 100.0
    assert files["completed_count"] == completed
    assert files["queued_count"] == len(queued_ids)
    assert [q["file_id"] for q in files["queued"]] == queued_ids
    for q in files["queued"]:
        assert set(q) == {"file_id", "file_name"} and q["file_name"].endswith(".mp4")


def test_analysis_status_three_levels_and_queue(launcher, clips):
    """§2.3.7 in its three shapes, with a running camera and a queued one on one slot;
    a push to the queued camera; the stream/camera mismatch error."""
    c = launcher.client
    app_id = launcher.launch("status")
    out_a, out_b = launcher.out_dir(app_id, 11), launcher.out_dir(app_id, 12)
    # camera 11 runs on slot 1 without files yet (waits for push_file); 12 queues behind it
    ra = c.start(app_id, **start_body(1, 11, "fileset", out_a))
    assert ra["status"] == "ok" and ra["message"] == "Stream 1 for camera 11 analysis started"
    rb = c.start(app_id, **start_body(1, 12, "fileset", out_b, init=file_item(120, clips["c1"], out_b)))
    assert rb["status"] == "ok" and rb["stream_id"] == 1 and rb["camera_id"] == 12
    assert "queued" in rb["message"]
    assert c.push(app_id, 1, 12, [file_item(121, clips["c2"], out_b),
                                  file_item(122, clips["c3"], out_b)], ack_wait=0)["push_ack"] is None

    whole = c.status(app_id)
    assert whole["type"] == "analysis_status" and whole["request_id"]
    iso_with_offset(whole["timestamp"])
    assert "stream" not in whole and "camera" not in whole
    assert [s["stream_id"] for s in whole["streams"]] == [0, 1, 2]
    assert [s["status"] for s in whole["streams"]] == ["idle", "running", "idle"]
    assert whole["streams"][0]["cameras"] == [] and whole["streams"][2]["cameras"] == []
    cams = whole["streams"][1]["cameras"]
    assert len(cams) == 2
    check_camera(cams[0], 11, "running", [], 0, [])
    check_camera(cams[1], 12, "queued", [], 0, [120, 121, 122])

    one = c.status(app_id, 1)
    assert one["type"] == "analysis_status" and "streams" not in one
    iso_with_offset(one["timestamp"])
    assert one["stream"]["stream_id"] == 1 and one["stream"]["status"] == "running"
    assert one["stream"]["cameras"] == cams

    cam = c.status(app_id, 1, 12)
    assert cam["type"] == "analysis_status" and cam["stream_id"] == 1
    assert "stream" not in cam and "streams" not in cam
    assert cam["camera"] == cams[1]

    bad = c.status(app_id, 2, 12)
    assert bad["type"] == "analysis_status" and bad["status"] == "error"
    assert bad["error_reason"] == "camera 12 not found on stream 2 (it is on stream 1)"

    # FIFO: when 11 completes (eos alone), 12 starts and plays its queued files in order
    c.push(app_id, 1, 11, [EOS], ack_wait=0)
    done11 = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 11)
    assert done11["processed_count"] == 0
    c.push(app_id, 1, 12, [EOS], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 12)
    evs = events_of(c, app_id, 12)
    assert [(e["type"], e.get("file_id")) for e in evs] == [
        ("processing_started", 120), ("file_done", 120), ("processing_started", 121),
        ("file_done", 121), ("processing_started", 122), ("file_done", 122),
        ("analysis_complete", None)]
    assert evs[0]["request_id"] == rb["request_id"]
    all_evs = c.msgs(app_id, types="analysis_complete,processing_started")
    assert [m["camera_id"] for m in all_evs][:2] == [11, 12]  # 11 finished before 12 began


def test_interrupt_running_and_queued(launcher, clips):
    """§2.3.4: interrupting a running camera drops its queue and frees the slot for the
    next queued camera; interrupting a queued camera removes it; errors for the rest."""
    c = launcher.client
    app_id = launcher.launch("intr")
    o = lambda cam: launcher.out_dir(app_id, cam)  # noqa: E731
    c.start(app_id, **start_body(0, 21, "fileset", o(21), init=file_item(210, clips["c0"], o(21))))
    c.start(app_id, **start_body(0, 22, "fileset", o(22), init=file_item(220, clips["c1"], o(22))))
    c.start(app_id, **start_body(0, 23, "fileset", o(23), init=file_item(230, clips["c2"], o(23))))
    c.push(app_id, 0, 21, [file_item(211 + i, clips["long"], o(21)) for i in range(20)], ack_wait=0)

    r = c.interrupt(app_id, 0, 22)  # queued: removed
    assert r == {**r, "type": "analysis_interrupted", "stream_id": 0, "camera_id": 22, "status": "ok"}
    assert "22" in r["message"] and "error_reason" not in r
    r = c.interrupt(app_id, 0, 21)  # running: stopped, queue dropped
    assert r["status"] == "ok" and r["camera_id"] == 21 and r["request_id"]
    assert r["message"] == "Analysis on stream 0 (camera 21) interrupted and reset."
    after = c.next_index(app_id)
    c.wait_message(app_id, lambda m: m["type"] == "processing_started" and m["camera_id"] == 23,
                   what="camera 23 to start after the interrupt")
    st = c.status(app_id, 0)["stream"]
    assert [cam["camera_id"] for cam in st["cameras"]] == [23]
    c.push(app_id, 0, 23, [EOS], ack_wait=0)
    done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 23)
    assert done["processed_count"] == 1
    # nothing of 22 ever ran; nothing of 21 after its interrupt reply, and no completion
    assert not events_of(c, app_id, 22)
    assert not [m for m in c.msgs(app_id, since=after) if m.get("camera_id") == 21]
    assert not [e for e in events_of(c, app_id, 21) if e["type"] == "analysis_complete"]
    started21 = {e["file_id"] for e in events_of(c, app_id, 21) if e["type"] == "processing_started"}
    assert len(started21) <= 21
    print(f"\n[interrupt] camera 21: {len(started21)} of 21 files started before the interrupt")

    for (sid, cam, reason) in [
            (1, 21, "stream 1 has no active analysis"),
            (0, 99, "stream 0 has no active analysis"),
            (0, 21, None)]:
        r = c.interrupt(app_id, sid, cam)
        assert r["type"] == "analysis_interrupted" and r["status"] == "error"
        assert r["stream_id"] == sid and r["camera_id"] == cam
        if reason:
            assert r["error_reason"] == reason
        else:
            assert r["error_reason"]


def test_file_camera_and_metrics_and_logs(launcher, clips):
    """`file` camera completes after its one file; §2.3.6 metrics; query_logs."""
    c = launcher.client
    app_id = launcher.launch("filecam")
    out = launcher.out_dir(app_id, 31)
    item = file_item(31, clips["c4"], out)  # a file camera: camera_id == file_id
    r = c.start(app_id, **start_body(2, 31, "file", out, init=item, camera_path=clips["c4"]))
    assert r["status"] == "ok"
    done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 31)
    assert done["request_id"] == r["request_id"] and done["processed_count"] == 1
    assert done["stream_id"] == 2
    assert len(h.read_output(item["output_path"])) == 30
    push = c.push(app_id, 2, 31, [EOS], ack_wait=5)["push_ack"]
    assert push["status"] == "error" and push["error_reason"].startswith("camera 31 on stream 2 has already ")

    m = c.metrics(app_id)
    assert m["type"] == "metrics" and m["request_id"] and m["status"] == "ok"
    for key in ("cpu_percent", "ram_mb", "gpu_percent", "vram_mb"):
        assert key in m
    assert isinstance(m["cpu_percent"], (int, float)) and m["cpu_percent"] >= 0
    assert isinstance(m["ram_mb"], (int, float)) and 5 < m["ram_mb"] < 2000
    if m["gpu_percent"] is None:  # no NVIDIA driver here: clear nulls and a reason
        assert m["vram_mb"] is None and m["gpu_error"]

    lg = c.logs(app_id, lines=50, level="debug")
    assert lg["type"] == "logs" and lg["status"] == "ok" and lg["request_id"]
    assert f"instid_{app_id}-pid_" in lg["log_path"] and os.path.exists(lg["log_path"])
    assert 0 < len(lg["lines"]) <= 50
    for line in lg["lines"]:
        assert set(line) >= {"timestamp", "level", "message"}


def test_terminate_app(launcher):
    """§2.3.5: app_terminated, exit 0, engine gone."""
    c = launcher.client
    app_id = launcher.launch("term")
    pid = c.instance(app_id)["process_id"]
    engines = h.engine_pids(pid)
    assert len(engines) == 1
    r = c.terminate(app_id)
    assert r["type"] == "app_terminated" and r["status"] == "ok" and r["request_id"]
    assert r["message"]
    rec = c.wait_exit(app_id)
    assert rec["exit_code"] == 0
    h.wait_until(lambda: not any(h.alive(p) for p in engines + [pid]), 10, "engine and supervisor gone")


def test_pkill_graceful(launcher):
    """Spec §2.2 watchdog: `pkill -f "APP_ID=<id>"` → graceful stop, app_terminated sent
    while connected, exit 0, no engine left."""
    c = launcher.client
    # Started without the bash wrapper: only the supervisor's own (re-exec'd) command line
    # can match, and its exit status is ours to read.
    app_id, proc = launcher.spawn_direct("pkill")
    pid = c.instance(app_id)["process_id"]
    assert pid == proc.pid
    engines = h.engine_pids(pid)
    assert len(engines) == 1
    res = subprocess.run(["pkill", "-f", f"APP_ID={app_id}"], timeout=10)
    assert res.returncode == 0
    term = c.wait_message(app_id, lambda m: m["type"] == "app_terminated", what="app_terminated")
    assert term["status"] == "ok"
    assert proc.wait(timeout=20) == 0
    h.wait_until(lambda: not any(h.alive(p) for p in engines + [pid]), 10, "engine and supervisor gone")


def test_watchdog_pkill_through_server(launcher):
    """The server's own watchdog path (spec §2.2-5) on an instance it launched with the
    spec's `bash -c "APP_ID=<id> … > log 2>&1"` line: pgrep finds it, pkill stops it
    gracefully."""
    c = launcher.client
    app_id = launcher.launch("watchdog")
    pid = c.instance(app_id)["process_id"]
    engines = h.engine_pids(pid)
    assert pid in c.watchdog(app_id, "pgrep")["pids"]
    res = c.watchdog(app_id, "pkill", "TERM")
    assert res["returncode"] == 0
    term = c.wait_message(app_id, lambda m: m["type"] == "app_terminated", what="app_terminated")
    assert term["status"] == "ok"
    h.wait_until(lambda: not any(h.alive(p) for p in engines + [pid]), 15, "engine and supervisor gone")
    rec = c.wait_exit(app_id)
    # the wrapper got SIGTERM too; when it outlived the supervisor it reports its 0
    assert rec["exit_code"] in (0, -15, 143)
    assert c.watchdog(app_id, "pgrep")["pids"] == []
