"""Drives the real ds-gst-engine over its control socket with clips decoded for real."""
import os
import signal
import subprocess

import pytest

from conftest import FRAMES_A, FRAMES_B, FRAMES_LONG, uri
from engine_client import Engine, EngineClient, read_output, write_config

BAD_KINDS = ["missing", "empty", "truncated", "random", "text", "audio", "directory"]
# decodebin drops a demuxer error posted while the demuxer is still being autoplugged;
# the engine's watchdog then fails the file instead (see ds-gst-engine.c).
WATCHDOG = "no video frame within"


def play_to_end(client, slot, file_id, path, new_camera, out):
    client.ok("play", slot=slot, file_id=file_id, uri=uri(path), new_camera=new_camera,
              output_path=out)
    return client.wait_file_end(slot, file_id)


def test_hello(client, config3):
    r = client.ok("hello")
    assert r["ready"] is True
    assert r["engine"] == "gst"
    assert r["protocol"] == 1
    assert r["streams"] == 3
    assert r["config_path"] == os.path.abspath(config3)
    assert r["gpu_ids"] == [0]


def test_three_slots_in_parallel_with_camera_continuity(client, clips, tmp_path):
    # Each slot plays one camera of three files; the next file starts on file_done.
    plan = {
        0: [clips["a"], clips["b"], clips["a"]],
        1: [clips["b"], clips["a"], clips["b"]],
        2: [clips["a"], clips["a"], clips["b"]],
    }
    frames_of = {clips["a"]: FRAMES_A, clips["b"]: FRAMES_B}
    step = {s: 0 for s in plan}
    outputs = {}

    def start(slot):
        k = step[slot]
        fid = slot * 100 + k
        out = str(tmp_path / f"s{slot}-f{k}.txt")
        outputs[(slot, k)] = out
        client.ok("play", slot=slot, file_id=fid, uri=uri(plan[slot][k]), new_camera=(k == 0),
                  output_path=out)

    for slot in plan:
        start(slot)
    busy = client.ok("progress")["slots"]
    assert [s["state"] for s in busy] == ["playing"] * 3 or any(
        e["event"] == "file_done" for e in client.events)

    started = set()
    camera_total = {s: 0 for s in plan}
    remaining = 9
    while remaining:
        e = client.wait_event(lambda e: e["event"] in ("file_started", "file_done", "file_error"))
        assert e["event"] != "file_error", e
        slot, fid = e["slot"], e["file_id"]
        k = fid - slot * 100
        if e["event"] == "file_started":
            started.add(fid)
            continue
        assert fid in started, "file_done before file_started"
        assert e["frames"] == frames_of[plan[slot][k]]
        camera_total[slot] += e["frames"]
        assert e["camera_frames"] == camera_total[slot]
        remaining -= 1
        step[slot] += 1
        if step[slot] < len(plan[slot]):
            start(slot)

    for slot in plan:
        camera_frame = 0
        for k, path in enumerate(plan[slot]):
            rows = read_output(outputs[(slot, k)])
            assert len(rows) == frames_of[path]
            assert [r[0] for r in rows] == list(range(camera_frame, camera_frame + len(rows)))
            assert [r[1] for r in rows] == list(range(len(rows)))
            pts = [r[2] for r in rows]
            assert pts[0] == 0 and pts == sorted(pts) and len(set(pts)) == len(pts)
            assert abs(pts[1] - 33_333_333) < 1000  # 30 fps
            camera_frame += len(rows)

    # A new camera on slot 0 restarts the camera index; slot 1 continues its camera.
    out0, out1 = str(tmp_path / "new-cam.txt"), str(tmp_path / "same-cam.txt")
    client.ok("play", slot=0, file_id=900, uri=uri(clips["b"]), new_camera=True, output_path=out0)
    client.ok("play", slot=1, file_id=901, uri=uri(clips["b"]), new_camera=False, output_path=out1)
    d0 = client.wait_file_end(0, 900)
    d1 = client.wait_file_end(1, 901)
    assert d0["event"] == d1["event"] == "file_done"
    assert d0["camera_frames"] == FRAMES_B
    assert d1["camera_frames"] == camera_total[1] + FRAMES_B
    assert read_output(out0)[0][:2] == (0, 0)
    assert read_output(out1)[0][:2] == (camera_total[1], 0)


def test_switch_keeps_other_slots_running(client, clips, tmp_path):
    # Slot 2 plays a long file while slot 0 switches files: slot 2 keeps every frame.
    out = str(tmp_path / "long.txt")
    client.ok("play", slot=2, file_id=1, uri=uri(clips["long"]), new_camera=True, output_path=out)
    for i in range(4):
        e = play_to_end(client, 0, 10 + i, clips["a"], i == 0, "")
        assert e["event"] == "file_done" and e["frames"] == FRAMES_A
    e = client.wait_file_end(2, 1)
    assert e["event"] == "file_done" and e["frames"] == FRAMES_LONG
    assert [r[1] for r in read_output(out)] == list(range(FRAMES_LONG))


def test_stop_mid_file(client, clips, tmp_path):
    out = str(tmp_path / "stopped.txt")
    client.ok("play", slot=1, file_id=7, uri=uri(clips["long"]), new_camera=True, output_path=out)
    client.wait_event(lambda e: e["event"] == "file_started" and e["file_id"] == 7)
    r = client.ok("stop", slot=1)
    assert r["was_playing"] is True and r["file_id"] == 7
    assert 0 < r["frames"] < FRAMES_LONG
    rows = read_output(out)  # closed by the stop: every counted frame is in it
    assert len(rows) == r["frames"]
    p = client.ok("progress")["slots"][1]
    assert p["state"] == "idle" and p["file_id"] is None and p["camera_frames"] == 0

    # The stop reset the camera: the next file starts at camera frame 0 without new_camera.
    e = play_to_end(client, 1, 8, clips["a"], False, str(tmp_path / "after.txt"))
    assert e["event"] == "file_done" and e["camera_frames"] == FRAMES_A
    assert read_output(str(tmp_path / "after.txt"))[0] == (0, 0, 0)
    assert not [e for e in client.events if e.get("file_id") == 7], client.events
    r = client.ok("stop", slot=1)
    assert r == {"id": r["id"], "ok": True, "was_playing": False}


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_bad_file(client, clips, kind, tmp_path):
    client.ok("play", slot=2, file_id=50, uri=uri(clips[kind]), new_camera=True,
              output_path=str(tmp_path / "bad.txt"))
    e = client.wait_file_end(2, 50)
    assert e["event"] == "file_error", e
    assert e["error"]
    assert client.ok("progress")["slots"][2]["state"] == "idle"
    # The slot and the engine carry on, and the bad file reports exactly once.
    e = play_to_end(client, 2, 51, clips["a"], False, "")
    assert e["event"] == "file_done" and e["frames"] == FRAMES_A
    assert not [e for e in client.events if e.get("file_id") == 50], client.events


def test_bad_file_messages(client, clips):
    expect = {
        "text": "text file",
        "missing": "Resource not found",
        "empty": "contains no data",
        "truncated": ("playable streams", WATCHDOG),
        "random": "Could not determine type",
        "audio": "no video stream",
        "directory": "not a regular file",
    }
    for i, (kind, text) in enumerate(expect.items()):
        client.ok("play", slot=0, file_id=i, uri=uri(clips[kind]))
        e = client.wait_file_end(0, i)
        texts = text if isinstance(text, tuple) else (text,)
        assert e["event"] == "file_error" and any(t in e["error"] for t in texts), (kind, e)


@pytest.mark.parametrize("bad_uri,text", [
    ("nonsense", "Invalid URI"),
    ("foo://bar", "No URI handler"),
    ("file://", "No file name"),
])
def test_bad_uri(client, clips, bad_uri, text):
    assert client.ok("play", slot=1, file_id=3, uri=bad_uri)
    e = client.wait_file_end(1, 3)
    assert e["event"] == "file_error" and text in e["error"], e
    e = play_to_end(client, 1, 4, clips["a"], True, "")
    assert e["event"] == "file_done" and e["frames"] == FRAMES_A


def test_busy_slot_and_reset(client, clips):
    client.ok("play", slot=0, file_id=1, uri=uri(clips["long"]), new_camera=True)
    r = client.request("play", slot=0, file_id=2, uri=uri(clips["a"]))
    assert r["ok"] is False and r["error"].startswith("slot 0 busy")
    r = client.request("reset", slot=0)
    assert r["ok"] is False and r["error"].startswith("slot 0 busy")
    r = client.request("play", slot=3, file_id=2, uri=uri(clips["a"]))
    assert r == {"id": r["id"], "ok": False, "error": "slot 3 out of range (0..2)"}
    p = client.ok("progress")["slots"][0]
    assert p["state"] == "playing" and p["file_id"] == 1
    e = client.wait_file_end(0, 1)
    assert e["event"] == "file_done"
    client.ok("reset", slot=0)
    e = play_to_end(client, 0, 3, clips["a"], False, "")
    assert e["camera_frames"] == FRAMES_A


def test_progress_reports_position_and_duration(client, clips):
    client.ok("play", slot=1, file_id=4, uri=uri(clips["long"]), new_camera=True)
    client.wait_event(lambda e: e["event"] == "file_started")
    p = client.ok("progress")["slots"][1]
    if p["state"] == "playing":
        assert p["file_id"] == 4
        assert p["duration_ns"] == FRAMES_LONG * 1_000_000_000 // 30
        assert 0 <= p["position_ns"] < p["duration_ns"]
        assert p["frames"] == p["camera_frames"] > 0
    e = client.wait_file_end(1, 4)
    p = client.ok("progress")["slots"][1]
    assert p["state"] == "idle" and p["file_id"] is None
    assert p["frames"] == FRAMES_LONG == e["frames"]
    assert abs(p["position_ns"] - (FRAMES_LONG - 1) * 1_000_000_000 // 30) < 1000


def test_reconnect_keeps_playing(engine, clips):
    c = engine.connect()
    c.ok("play", slot=0, file_id=1, uri=uri(clips["long"]), new_camera=True)
    c.sock.sendall(b'{"id":99,"op":"pro')  # vanish mid-line
    c.close()
    c = engine.connect()
    second = EngineClient(engine.socket_path)
    assert second.read_message() == {"event": "rejected", "error": "another client is connected"}
    second.close()
    # The file kept playing across the reconnect: its end is reported on the new
    # connection, unless it ended while no client was connected (then it is dropped).
    p = c.ok("progress")["slots"][0]
    if p["state"] == "playing":
        assert p["file_id"] == 1
        e = c.wait_file_end(0, 1)
        assert e["event"] == "file_done" and e["frames"] == FRAMES_LONG
    else:
        assert p["frames"] == FRAMES_LONG
    c.close()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "shutdown"])
def test_clean_exit(engine_bin, config3, tmp_path, clips, how):
    e = Engine(engine_bin, config3, tmp_path)
    c = e.connect()
    c.ok("play", slot=0, file_id=1, uri=uri(clips["long"]), new_camera=True,
         output_path=str(tmp_path / "o.txt"))
    if how == "shutdown":
        c.ok("shutdown")
    else:
        e.proc.send_signal(getattr(signal, how))
    assert e.wait() == 0, e.log()
    assert not os.path.exists(e.socket_path)
    c.close()


def test_bad_command_lines(engine_bin, tmp_path, config3):
    def run(args, env_socket=True):
        env = dict(os.environ)
        env.pop("DS_CONTROL_SOCKET", None)
        if env_socket:
            env["DS_CONTROL_SOCKET"] = str(tmp_path / "x.sock")
        return subprocess.run([engine_bin] + args, env=env, capture_output=True, timeout=30)

    bad_cfg = tmp_path / "bad.txt"
    bad_cfg.write_text("[source0]\nenable=0\n")
    for args, env_socket in [
        (["-c", config3], False),               # no DS_CONTROL_SOCKET
        ([], True),                              # no config
        (["-c", str(tmp_path / "nope.txt")], True),
        (["-c", str(bad_cfg)], True),
        (["--no-such-flag"], True),
        (["-c", config3, "--bogus"], True),
    ]:
        r = run(args, env_socket)
        assert r.returncode == 2, (args, r)
        assert r.stderr.decode().strip().count("\n") == 0 and r.stderr, (args, r.stderr)
    assert not os.path.exists(tmp_path / "x.sock")
    # deepstream-app's spellings are accepted.
    for flag in ["--cfg-file", "--config"]:
        e = Engine(engine_bin, None, tmp_path, args=[flag, config3, "-t"])
        c = e.connect()
        assert c.ok("hello")["streams"] == 3
        c.close()
        e.stop()
        assert e.proc.returncode == 0


def test_num_sources_and_gpu_ids(engine_bin, tmp_path):
    cfg = tmp_path / "multi.txt"
    cfg.write_text("[source0]\nenable=1\ntype=3\nnum-sources=4\ngpu-id=1\n"
                   "[source1]\nenable=1\ntype=2\ngpu-id=0\n[streammux]\ngpu-id=1\n")
    e = Engine(engine_bin, str(cfg), tmp_path)
    c = e.connect()
    r = c.ok("hello")
    assert r["streams"] == 5 and r["gpu_ids"] == [0, 1]
    assert len(c.ok("progress")["slots"]) == 5
    c.close()
    e.stop()


def test_output_fifo_refused_without_blocking(client, clips, tmp_path):
    # Opening a FIFO for writing would block the main loop until a reader comes.
    fifo = str(tmp_path / "out.fifo")
    os.mkfifo(fifo)
    for path in [fifo, "/dev/null", str(tmp_path)]:
        r = client.request("play", slot=0, file_id=1, uri=uri(clips["a"]), new_camera=True,
                           output_path=path)
        assert r == {"id": r["id"], "ok": False,
                     "error": f"cannot open output {path}: not a regular file"}, r
    assert client.ok("progress")["slots"][0]["state"] == "idle"
    e = play_to_end(client, 0, 2, clips["a"], True, str(tmp_path / "ok.txt"))
    assert e["event"] == "file_done" and len(read_output(str(tmp_path / "ok.txt"))) == FRAMES_A


def test_hostile_json_lines(client):
    # json-glib recurses per nesting level (100,000 levels overflowed the stack) and
    # wraps integers beyond int64 (2^64 + 5 would have become id 5).
    client.sock.sendall(b'{"id":5,"x":' + b"[" * 100_000 + b"\n")
    assert client.read_message() == {"id": None, "ok": False,
                                     "error": "malformed JSON: nesting too deep"}
    client.sock.sendall(b'{"id":18446744073709551621,"op":"hello"}\n')
    assert client.read_message() == {"id": None, "ok": False,
                                     "error": "malformed JSON: integer out of range"}
    assert client.ok("hello")["engine"] == "gst"


@pytest.mark.parametrize("name,value", [
    ("DS_GST_STALL_TIMEOUT_MS", "9223372036854775807"),
    ("DS_GST_STALL_TIMEOUT_MS", "0"),
    ("DS_GST_STALL_TIMEOUT_MS", "5s"),
    ("DS_GST_DECODER_THREADS", "-1"),
])
def test_bad_environment(engine_bin, config3, tmp_path, name, value):
    sock = tmp_path / "env.sock"
    env = dict(os.environ, DS_CONTROL_SOCKET=str(sock), **{name: value})
    r = subprocess.run([engine_bin, "-c", config3], env=env, capture_output=True, timeout=30)
    assert r.returncode == 2, r
    err = r.stderr.decode()
    assert err.count("\n") == 1 and name in err and value in err, err
    assert not sock.exists()
