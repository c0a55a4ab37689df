"""Input paths that would block: a FIFO (open() waits for a writer) and a file on a mount
that stops answering (stat() and open() wait in the kernel), played by ds-gst-engine
itself. Neither may block its main loop: requests sent meanwhile are answered at once,
the file fails, the slot and the other slots go on, and a check stuck in the kernel
holds one thread per slot at most."""
import os
import sys
import threading
import time

import pytest

from conftest import FRAMES_A, FRAMES_LONG, uri

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "test"))
from blockfs import BlockFS  # noqa: E402

CHECK_TIMEOUT_MS = 5000  # DS_PATH_CHECK_TIMEOUT_MS


def check_threads(pid):
    """The engine's path-check workers (ds_path_check_start names them)."""
    n = 0
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{t}/comm") as f:
                n += f.read().strip() == "ds-path-check"
        except FileNotFoundError:
            pass
    return n


def timed_progress(client, until, stop_at):
    """progress requests every 20 ms until until() or stop_at; returns the reply times."""
    took = []
    while not until() and time.monotonic() < stop_at:
        t0 = time.monotonic()
        client.ok("progress")
        took.append(time.monotonic() - t0)
        time.sleep(0.02)
    return took


def ended(client, slot, file_id):
    return lambda: any(e.get("event") in ("file_done", "file_error") and e["slot"] == slot
                       and e["file_id"] == file_id for e in client.events)


def test_fifo_is_refused_at_once(client, clips, tmp_path):
    fifo = str(tmp_path / "camera.mp4")
    os.mkfifo(fifo)
    t0 = time.monotonic()
    client.ok("play", slot=0, file_id=1, uri=uri(fifo), new_camera=True)
    assert time.monotonic() - t0 < 0.5
    e = client.wait_file_end(0, 1, timeout=5)
    took = time.monotonic() - t0
    assert e == {"event": "file_error", "slot": 0, "file_id": 1,
                 "error": f"not a regular file: {fifo}"}, e
    assert took < 1.0, took
    assert client.ok("progress")["slots"][0]["state"] == "idle"
    client.ok("play", slot=0, file_id=2, uri=uri(clips["a"]))
    e = client.wait_file_end(0, 2)
    assert e["event"] == "file_done" and e["frames"] == FRAMES_A
    assert not [x for x in client.events if x.get("file_id") == 1], client.events


def test_path_that_blocks_fails_alone_without_blocking_the_main_loop(engine, client, clips,
                                                                      tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    os.link(clips["a"], src / "hung.mp4")
    os.link(clips["a"], src / "fine.mp4")
    with BlockFS(str(src), str(tmp_path / "mnt"), block={"hung.mp4": 8}) as fs:
        pid = engine.proc.pid
        client.ok("play", slot=1, file_id=10, uri=uri(clips["long"]), new_camera=True)
        t0 = time.monotonic()
        client.ok("play", slot=0, file_id=1, uri=uri(fs.path("hung.mp4")), new_camera=True)
        took = timed_progress(client, ended(client, 0, 1), t0 + 15)
        e = client.wait_file_end(0, 1, timeout=1)
        failed_after = time.monotonic() - t0
        assert e["event"] == "file_error", e
        assert e["error"] == (f"path did not answer within {CHECK_TIMEOUT_MS} ms: "
                              f"{fs.path('hung.mp4')}"), e
        assert CHECK_TIMEOUT_MS / 1000 <= failed_after < CHECK_TIMEOUT_MS / 1000 + 1.5
        assert len(took) > 50 and max(took) < 0.25, (len(took), max(took))
        # One worker per slot that checked a file (0, stuck in the kernel, and 1).
        assert check_threads(pid) == 2

        # Slot 0 moves on: the next file's check waits for the stuck one (the mount
        # answers at 8 s) within its own deadline, then the file plays.
        client.ok("play", slot=0, file_id=2, uri=uri(fs.path("fine.mp4")))
        e = client.wait_file_end(0, 2, timeout=20)
        assert e["event"] == "file_done" and e["frames"] == FRAMES_A, e
        # The other slot never noticed.
        e = client.wait_file_end(1, 10, timeout=30)
        assert e["event"] == "file_done" and e["frames"] == FRAMES_LONG, e
        assert check_threads(pid) == 2  # slot 0's next check waited for its worker
    assert not [x for x in client.events if x.get("file_id") == 1], client.events


def test_stop_while_the_path_hangs(engine, client, clips, tmp_path):
    """A stop during the check ends the file at once; the late answer plays nothing."""
    src = tmp_path / "src"
    src.mkdir()
    os.link(clips["a"], src / "hung.mp4")
    with BlockFS(str(src), str(tmp_path / "mnt"), block={"hung.mp4": 2}) as fs:
        client.ok("play", slot=2, file_id=5, uri=uri(fs.path("hung.mp4")), new_camera=True)
        r = client.ok("stop", slot=2)
        assert r["was_playing"] is True and r["file_id"] == 5
        # Our own stat waits its 2 s too, so the engine's check has answered by then;
        # its stale answer must start nothing.
        os.stat(fs.path("hung.mp4"))
        client.ok("progress")
        p = client.ok("progress")["slots"][2]
        assert p["state"] == "idle" and p["frames"] == 0, p
        assert not [x for x in client.events if x.get("file_id") == 5], client.events
