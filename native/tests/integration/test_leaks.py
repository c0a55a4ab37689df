"""ds-gst-engine built with AddressSanitizer: 100 play/stop cycles, whole files, every bad
file kind and a reconnect, then a clean exit with nothing reported by ASan/LSan."""
import os

import pytest

from conftest import FRAMES_A, uri
from engine_client import Engine

SUPP = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lsan.supp")


@pytest.fixture(scope="module")
def asan_bin():
    path = os.environ.get("DS_GST_ENGINE_ASAN")
    if not path:
        pytest.skip("DS_GST_ENGINE_ASAN not set: `make -C native test` sets it")
    return path


def test_play_stop_cycles_leak_nothing(asan_bin, config3, clips, tmp_path):
    env = {
        "G_SLICE": "always-malloc",   # or GSlice hides leaks
        "G_DEBUG": "gc-friendly",
        "DS_GST_STALL_TIMEOUT_MS": "3000",
        "ASAN_OPTIONS": os.environ.get(
            "DS_ASAN_OPTIONS",
            # Slow unwinding reaches _dl_init through GLib frames, so the suppression matches.
            "detect_leaks=1:exitcode=99:fast_unwind_on_malloc=0:malloc_context_size=8"),
        "LSAN_OPTIONS": f"suppressions={SUPP}:print_suppressions=0:exitcode=98",
    }
    e = Engine(asan_bin, config3, tmp_path, env=env)
    try:
        c = e.connect(timeout=60)
        c.timeout = 30
        for i in range(100):
            slot = i % 3
            c.ok("play", slot=slot, file_id=i, uri=uri(clips["long"]), new_camera=(i % 2 == 0),
                 output_path=str(tmp_path / f"cycle-{slot}.txt"))
            if i % 10 == 0:
                c.wait_event(lambda ev, i=i: ev["event"] == "file_started" and ev["file_id"] == i)
            r = c.ok("stop", slot=slot)
            assert r["file_id"] == i
        for i, kind in enumerate(["a", "a", "missing", "empty", "truncated", "random", "text",
                                  "audio", "directory"]):
            c.ok("play", slot=0, file_id=1000 + i, uri=uri(clips[kind]), new_camera=True,
                 output_path=str(tmp_path / "full.txt"))
            ev = c.wait_file_end(0, 1000 + i)
            assert ev["event"] == ("file_done" if kind == "a" else "file_error"), ev
            if kind == "a":
                assert ev["frames"] == FRAMES_A
        c.close()
        c = e.connect(timeout=30)
        c.ok("progress")
        c.ok("shutdown")
        rc = e.wait(timeout=60)
    finally:
        e.stop()
    log = e.log()
    assert "Sanitizer" not in log, log[-20000:]
    assert rc == 0, log[-5000:]
