"""A pipeline that stops moving frames while its main loop answers ([standin]
wedge-after-frames), and input paths that would block the adapter's main loop (a FIFO, a
file on a mount that stops answering): the real adapter on the stand-in."""
import os
import sys
import time

from conftest import LONG_FRAMES, asan, uri

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "test"))
from blockfs import BlockFS  # noqa: E402

CHECK_TIMEOUT_MS = 5000  # DS_PATH_CHECK_TIMEOUT_MS
MAX_REPLY_S = 1.0 if asan() else 0.25


def timed_progress(c, until, stop_at):
    """progress every 20 ms until until(slots) is true; returns (slots, reply times)."""
    took = []
    while True:
        t0 = time.monotonic()
        slots = c.ok("progress")["slots"]
        took.append(time.monotonic() - t0)
        if until(slots) or time.monotonic() > stop_at:
            return slots, took
        time.sleep(0.02)


def ended(c, slot, file_id):
    return any(e.get("event") in ("file_done", "file_error") and e["slot"] == slot
               and e["file_id"] == file_id for e in c.events)


def frames_still(c, slot, still_s, stop_at):
    """Polls until the slot's frame count has not moved for still_s; returns it."""
    last, since = None, time.monotonic()
    took = []

    def still(slots):
        nonlocal last, since
        f = slots[slot]["frames"]
        if f != last:
            last, since = f, time.monotonic()
        return time.monotonic() - since >= still_s

    _, took = timed_progress(c, still, stop_at)
    assert time.monotonic() < stop_at, "the frames never stopped"
    return last, took


def test_wedge_stops_the_pipeline_while_the_main_loop_answers(start, clips, tmp_path):
    """After wedge-after-frames the sink keeps every batch: the decoders run out of
    surfaces and the frame counts stop, of every slot, while requests are answered."""
    e = start(wedge_after_frames=40, block_timeout_ms=500)
    c = e.client
    c.ok("play", slot=0, file_id=1, uri=uri(clips["long"]), new_camera=True,
         output_path=str(tmp_path / "0.txt"))
    c.ok("play", slot=1, file_id=2, uri=uri(clips["long"]), new_camera=True)
    frames, took = frames_still(c, 0, 1.0, time.monotonic() + 30)
    assert 0 < frames < LONG_FRAMES, frames
    assert max(took) < MAX_REPLY_S, max(took)
    slots = c.ok("progress")["slots"]
    assert slots[0]["state"] == slots[1]["state"] == "playing"
    assert slots[1]["frames"] < LONG_FRAMES
    assert not ended(c, 0, 1) and not ended(c, 1, 2), c.events
    # A stop answers at once; the slot's next file gets no further than the surfaces the
    # decoder has left: the pipeline itself is stuck.
    t0 = time.monotonic()
    r = c.ok("stop", slot=0)
    assert time.monotonic() - t0 < MAX_REPLY_S
    assert r["was_playing"] and r["file_id"] == 1 and r["frames"] == frames
    c.ok("play", slot=0, file_id=3, uri=uri(clips["a"]))
    frames3, took = frames_still(c, 0, 1.0, time.monotonic() + 30)
    assert frames3 < 60 and max(took) < MAX_REPLY_S, (frames3, max(took))
    assert not ended(c, 0, 3)
    assert "standin sink: wedged after" in e.log()
    e.finish()  # the teardown lets go of the kept batches: exit 0, no leak under LSan


def test_fifo_is_refused_by_the_adapter(start, clips, tmp_path):
    e = start()
    c = e.client
    fifo = str(tmp_path / "camera.mp4")
    os.mkfifo(fifo)
    t0 = time.monotonic()
    c.ok("play", slot=0, file_id=1, uri=uri(fifo), new_camera=True,
         output_path=str(tmp_path / "fifo.txt"))
    assert time.monotonic() - t0 < MAX_REPLY_S
    ev = c.wait_file_end(0, 1, timeout=5)
    assert ev == {"event": "file_error", "slot": 0, "file_id": 1,
                  "error": f"not a regular file: {fifo}"}, ev
    assert time.monotonic() - t0 < 1.0 + MAX_REPLY_S
    assert c.ok("progress")["slots"][0]["state"] == "idle"
    c.ok("play", slot=0, file_id=2, uri=uri(clips["a"]))
    ev = c.wait_file_end(0, 2, timeout=30)
    assert ev["event"] == "file_done" and ev["frames"] == 60, ev
    e.finish()


def test_path_that_blocks_does_not_block_the_main_loop(start, clips, tmp_path):
    """A file whose stat() hangs for 8 s: play and every request meanwhile are answered
    at once, the file fails after the check's deadline, slot 1 plays on, and slot 0's next
    file plays once the mount answers."""
    src = tmp_path / "src"
    src.mkdir()
    os.link(clips["a"], src / "hung.mp4")
    os.link(clips["a"], src / "fine.mp4")
    e = start()
    c = e.client
    with BlockFS(str(src), str(tmp_path / "mnt"), block={"hung.mp4": 8}) as fs:
        c.ok("play", slot=1, file_id=10, uri=uri(clips["long"]), new_camera=True)
        t0 = time.monotonic()
        c.ok("play", slot=0, file_id=1, uri=uri(fs.path("hung.mp4")), new_camera=True,
             output_path=str(tmp_path / "hung.txt"))
        _, took = timed_progress(c, lambda s: ended(c, 0, 1), t0 + 15)
        failed_after = time.monotonic() - t0
        ev = c.wait_file_end(0, 1, timeout=1)
        assert ev["event"] == "file_error", ev
        assert ev["error"] == (f"path did not answer within {CHECK_TIMEOUT_MS} ms: "
                               f"{fs.path('hung.mp4')}"), ev
        assert CHECK_TIMEOUT_MS / 1000 <= failed_after < CHECK_TIMEOUT_MS / 1000 + 1.5
        print(f"blocking path: file_error after {failed_after:.2f} s; {len(took)} progress "
              f"requests meanwhile, longest reply {max(took) * 1000:.1f} ms")
        assert len(took) > 50 and max(took) < MAX_REPLY_S, (len(took), max(took))
        c.ok("play", slot=0, file_id=2, uri=uri(fs.path("fine.mp4")))
        ev = c.wait_file_end(0, 2, timeout=30)
        assert ev["event"] == "file_done" and ev["frames"] == 60, ev
        ev = c.wait_file_end(1, 10, timeout=60)
        assert ev["event"] == "file_done" and ev["frames"] == LONG_FRAMES, ev
    e.finish()
