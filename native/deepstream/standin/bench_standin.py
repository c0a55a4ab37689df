"""Throughput of the real adapter on the legacy-muxer stand-in: the busy slots' frame rate
with 1 of 4 and 4 of 4 slots busy, against a muxer that has that one pad only. Prints a
Markdown table (medians over --runs runs, alternated) and writes it to --out."""
import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE / "tests"))  # ahead: both folders have a conftest
from conftest import StandinEngine, uri, write_config  # noqa: E402
from engine_client import make_clip  # noqa: E402


def run(app, clip, tmp, slots, busy):
    e = StandinEngine(app, write_config(tmp / f"b{slots}-{busy}.txt", clip, slots=slots), tmp)
    try:
        c = e.start()
        for s in range(busy):
            c.ok("play", slot=s, file_id=s + 1, uri=uri(clip), new_camera=True,
                 output_path=str(tmp / f"out-{s}.txt"))
        start, end, frames = {}, {}, {}
        while len(end) < busy:
            ev = c.wait_event(lambda x: x.get("event") in ("file_started", "file_done",
                                                           "file_error"), timeout=120)
            if ev["event"] == "file_started":
                start[ev["slot"]] = ev["mono_ns"]
            elif ev["event"] == "file_done":
                end[ev["slot"]], frames[ev["slot"]] = ev["mono_ns"], ev["frames"]
            else:
                raise RuntimeError(ev)
        c.ok("shutdown")
        e.wait(timeout=60)
        per_slot = [(frames[s] - 1) / ((end[s] - start[s]) / 1e9) for s in range(busy)]
        return statistics.mean(per_slot), sum(per_slot)
    finally:
        e.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=600)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = make_clip(tmp / "clip.mp4", a.frames, width=320, height=180)
        cases = [("one pad (1 slot config)", 1, 1), ("1 of 4 busy", 4, 1), ("4 of 4 busy", 4, 4)]
        got = {name: [] for name, _, _ in cases}
        for _ in range(a.runs):
            for name, slots, busy in cases:
                got[name].append(run(a.app, clip, tmp, slots, busy))
    one_pad = statistics.median(r[0] for r in got[cases[0][0]])
    lines = [f"Stand-in throughput ({a.frames}-frame 320x180 H.264 clip per busy slot, "
             f"batched-push-timeout 33 ms, median of {a.runs})", "",
             "| case | fps per busy slot | fps all slots | per slot / one pad |",
             "|---|---|---|---|"]
    for name, _, _ in cases:
        per = statistics.median(r[0] for r in got[name])
        tot = statistics.median(r[1] for r in got[name])
        lines.append(f"| {name} | {per:.0f} | {tot:.0f} | {per / one_pad:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
