"""The real adapter on the stand-in, under each model of DeepStream's closed parts
(tests/conftest.py VARIANTS): the busy slots' frame rate with 1 of 4 and 4 of 4 slots
busy, against a muxer that has that one pad only, and the switch gap on a slot (its last
frame → the next file's first, `file_done` → `file_started` on the engine's clock) over
files played back to back as one camera. Prints a Markdown table (medians over --runs
runs, alternated) and writes it to --out."""
import argparse
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent / "tests" / "integration"))
sys.path.insert(0, str(HERE / "tests"))  # ahead: both folders have a conftest
from conftest import VARIANTS, StandinEngine, uri, write_config  # noqa: E402
from engine_client import make_clip  # noqa: E402


def engine(app, clip, tmp, name, slots, variant):
    return StandinEngine(app, write_config(tmp / f"{name}.txt", clip, slots=slots,
                                           **VARIANTS[variant]), tmp)


def fps(app, clip, tmp, slots, busy, variant):
    e = engine(app, clip, tmp, f"b{slots}-{busy}", slots, variant)
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


def gaps(app, clip, tmp, files, variant):
    """Switch gaps (ms) on slot 0 of 4, each file played on the previous one's file_done."""
    e = engine(app, clip, tmp, "gaps", 4, variant)
    out = []
    try:
        c = e.start()
        last_done = None
        for i in range(files):
            c.ok("play", slot=0, file_id=i, uri=uri(clip), new_camera=i == 0,
                 output_path=str(tmp / "gap.txt"))
            ev = c.wait_event(lambda x: x.get("event") == "file_started", timeout=60)
            if last_done is not None:
                out.append((ev["mono_ns"] - last_done) / 1e6)
            ev = c.wait_file_end(0, i, timeout=60)
            if ev["event"] != "file_done":
                raise RuntimeError(ev)
            last_done = ev["mono_ns"]
        c.ok("shutdown")
        e.wait(timeout=60)
        return out
    finally:
        e.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--app", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--switches", type=int, default=40)
    ap.add_argument("--variants", default="pessimistic,optimistic")
    a = ap.parse_args()
    variants = a.variants.split(",")
    cases = [("one pad (1-slot config)", 1, 1), ("1 of 4 busy", 4, 1), ("4 of 4 busy", 4, 4)]
    got = {(v, name): [] for v in variants for name, _, _ in cases}
    gap_ms = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        clip = make_clip(tmp / "clip.mp4", a.frames, width=320, height=180)
        short = make_clip(tmp / "short.mp4", 30, width=320, height=180)
        for _ in range(a.runs):
            for v in variants:
                for name, slots, busy in cases:
                    got[(v, name)].append(fps(a.app, clip, tmp, slots, busy, v))
        for v in variants:
            gap_ms[v] = gaps(a.app, short, tmp, a.switches + 1, v)
    lines = [f"Stand-in throughput ({a.frames}-frame 320x180 H.264 clip per busy slot, "
             f"batched-push-timeout 33 ms, median of {a.runs}) and switch gaps ({a.switches} "
             "switches of 30-frame files on one slot)", "",
             "| variant | case | fps per busy slot | fps all slots | per slot / one pad |",
             "|---|---|---|---|---|"]
    for v in variants:
        one_pad = statistics.median(r[0] for r in got[(v, cases[0][0])])
        for name, _, _ in cases:
            per = statistics.median(r[0] for r in got[(v, name)])
            tot = statistics.median(r[1] for r in got[(v, name)])
            lines.append(f"| {v} | {name} | {per:.0f} | {tot:.0f} | {per / one_pad:.2f} |")
    lines += ["", "| variant | [standin] | switch gap median / p95 / max (ms) |", "|---|---|---|"]
    for v in variants:
        g = sorted(gap_ms[v])
        p95 = g[min(len(g) - 1, int(round(0.95 * (len(g) - 1))))]
        keys = ", ".join(f"{k.replace('_', '-')}={val}" for k, val in VARIANTS[v].items())
        lines.append(f"| {v} | {keys or 'defaults'} | {statistics.median(g):.1f} / {p95:.1f} / "
                     f"{g[-1]:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(a.out).write_text(text)


if __name__ == "__main__":
    main()
