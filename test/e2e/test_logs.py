"""Log files: spec names, rotation at 2 MB into .log.1 … .log.10 and no more, live log
events and query_logs."""
from __future__ import annotations

import glob
import os
import re

import harness as h
from harness import EOS, file_item, start_body

MAX = 2 * 1024 * 1024


def test_rotation_keeps_exactly_ten(launcher, clips, root):
    """> 25 MB of log (the engine's GStreamer debug output, which goes into the instance
    log) → the live file plus .log.1 … .log.10, each ≤ 2 MB, names as the spec."""
    c = launcher.client
    app_id = launcher.launch("rotate", env={"GST_DEBUG": "*:6", "GST_DEBUG_NO_COLOR": "1"})
    pid = c.instance(app_id)["process_id"]
    dirs = glob.glob(os.path.join(root, "logs", f"instid_{app_id}-pid_{pid}-date_*"))
    assert len(dirs) == 1
    d = dirs[0]
    stamp = re.fullmatch(rf"instid_{re.escape(app_id)}-pid_{pid}-date_(\d{{6}}_\d{{6}})", os.path.basename(d))
    assert stamp, d
    base = os.path.join(d, f"instid_{app_id}-pid_{pid}-date_{stamp.group(1)}.log")
    # the first line the instance wrote (the oldest file may already be a backup)
    oldest = max(glob.glob(base + "*"), key=lambda p: int(p.rsplit(".", 1)[1]) if p != base else 0)
    with open(oldest, "rb") as fh:
        first_line = fh.readline()
    assert first_line.endswith(b"\n") and b'"time"' in first_line
    out = launcher.out_dir(app_id, 800)
    assert c.start(app_id, **start_body(0, 800, "fileset", out))["status"] == "ok"
    n = 0

    def play_one():
        nonlocal n
        n += 1
        item = file_item(8000 + n, clips[f"c{n % 6}"], out)
        c.push(app_id, 0, 800, [item], ack_wait=0)
        c.wait_message(app_id, lambda m: m.get("file_id") == item["file_id"] and
                       m["type"] in ("file_done", "file_error"), timeout=60)

    # play until ten backups exist, then ~30 MB more: > 25 MB in all
    h.wait_until(lambda: play_one() or os.path.exists(base + ".10"), 180, "ten rotated files",
                 interval=0)
    for _ in range(3):
        play_one()
    names = sorted(os.listdir(d))
    assert sorted(names) == sorted([os.path.basename(base)] +
                                   [os.path.basename(base) + f".{i}" for i in range(1, 11)])
    sizes = {x: os.path.getsize(os.path.join(d, x)) for x in names}
    assert all(s <= MAX for s in sizes.values()), sizes
    assert all(sizes[os.path.basename(base) + f".{i}"] > MAX // 2 for i in range(1, 11)), sizes
    # the oldest files were dropped: the first line the instance wrote is in none of them
    for x in names:
        with open(os.path.join(d, x), "rb") as fh:
            assert first_line not in fh.read(), f"{x} still holds the first line"
    written = sum(sizes.values())
    print(f"\n[drill] log rotation: {n} files played, {len(names)} log files, "
          f"{written / 1e6:.1f} MB kept, largest {max(sizes.values())} bytes")
    # the instance is healthy and still logs into the live file
    c.push(app_id, 0, 800, [EOS], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 800)
    assert c.terminate(app_id)["status"] == "ok"
    assert c.wait_exit(app_id)["exit_code"] == 0


def test_live_log_events(launcher):
    """Lines at or above the live level reach the server as `log` events as they happen,
    nothing below it; query_logs returns recent lines from memory. (The instance drops a
    live line, counting it in the next line's `dropped`, while protocol messages wait to go
    out; the line logged once a handshake is confirmed has the link to itself.)"""
    c = launcher.client
    app_id = launcher.launch("livelog", env={"DS_LIVE_LOG_LEVEL": "info"})
    ev = c.wait_message(app_id, lambda m: m["type"] == "log", what="a live log event")
    assert ev["level"] == "info" and ev["message"] and ev["timestamp"] and ev["source"]
    assert isinstance(ev["seq"], int) and ev["dropped"] >= 0
    c.status(app_id)  # logged at debug: below the live level
    levels = {m["level"] for m in c.msgs(app_id, types="log")}
    assert levels <= {"info", "warn", "error", "fatal", "panic"}, levels
    lg = c.logs(app_id, lines=1000, level="info")
    assert any(ev["message"].startswith(line["message"]) for line in lg["lines"]), lg["lines"][-5:]
    assert all(line["level"] != "debug" for line in lg["lines"])
