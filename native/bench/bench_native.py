#!/usr/bin/python3
"""Benchmark of ds-gst-engine (see native/README.md): switch gap, back-to-back wall time
against one engine process per file and against a decode-only gst-launch, RSS drift."""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from engine_client import Engine, make_clip, write_config  # noqa: E402

PATTERNS = ["smpte", "ball", "snow", "pinwheel"]


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def ms(ns):
    return ns / 1e6


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def play_sequence(client, files, slot=0, on_done=None):
    """Plays files back-to-back on one slot, replying to each file_done at once.
    Returns [(file_started mono_ns, file_done mono_ns)]."""
    spans = []
    for i, path in enumerate(files):
        client.ok("play", slot=slot, file_id=i, uri="file://" + path, new_camera=(i == 0))
        started = client.wait_event(lambda e, i=i: e["event"] in ("file_started", "file_error")
                                    and e["file_id"] == i, timeout=30)
        if started["event"] != "file_started":
            raise RuntimeError(f"file {path}: {started}")
        done = client.wait_file_end(slot, i, timeout=60)
        if done["event"] != "file_done":
            raise RuntimeError(f"file {path}: {done}")
        spans.append((started["mono_ns"], done["mono_ns"]))
        if on_done:
            on_done(i)
    return spans


def gaps(spans):
    return [b[0] - a[1] for a, b in zip(spans, spans[1:])]


def back_to_back(engine_bin, config, workdir, files):
    """Engine start → last file_done, one engine, one slot."""
    t0 = time.monotonic()
    e = Engine(engine_bin, config, workdir)
    try:
        c = e.connect()
        spans = play_sequence(c, files)
        wall = time.monotonic() - t0
        c.ok("shutdown")
        e.wait()
        c.close()
    finally:
        e.stop()
    return wall, spans


def process_per_file(engine_bin, config, workdir, files):
    """A new engine process for every file: start, play, wait, shut down."""
    t0 = time.monotonic()
    spans = []
    for path in files:
        e = Engine(engine_bin, config, workdir)
        try:
            c = e.connect()
            spans += play_sequence(c, [path])
            c.ok("shutdown")
            e.wait()
            c.close()
        finally:
            e.stop()
    return time.monotonic() - t0, spans


def decode_only(files, workdir, threads=None):
    """One gst-launch process decoding the same files in sequence (splitmuxsrc plays
    the numbered files as one stream): the decode-only limit. threads=None: decodebin
    with libav's automatic threading; else avdec_h264 max-threads=threads, as the engine."""
    pattern = os.path.join(workdir, "seq-*.mp4")
    for old in os.listdir(workdir):
        if old.startswith("seq-"):
            os.unlink(os.path.join(workdir, old))
    for i, path in enumerate(files):
        os.symlink(path, os.path.join(workdir, f"seq-{i:05d}.mp4"))
    decode = ["decodebin"] if threads is None else [
        "h264parse", "!", "avdec_h264", f"max-threads={threads}"]
    return timed_baseline(["gst-launch-1.0", "-q", "splitmuxsrc", f"location={pattern}", "!"]
                          + decode + ["!", "fakesink", "sync=false"])


def timed_baseline(cmd):
    """Wall time of one baseline gst-launch run. The concat baseline starts all its
    decoders at once and now and then fails to preroll and then hangs in gst-launch
    (not the engine's code): such a run is killed after 120 s and tried again, twice."""
    for attempt in range(3):
        t0 = time.monotonic()
        try:
            subprocess.run(cmd, check=True, timeout=120, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            return time.monotonic() - t0
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
            print(f"baseline run failed ({type(e).__name__}), retrying", file=sys.stderr)
    raise RuntimeError("baseline gst-launch failed 3 times: " + " ".join(cmd[:6]))


def decode_only_concat(files):
    """One gst-launch process, one uridecodebin per file joined by concat: the baseline
    the issue names; like the engine, every file gets its own demuxer and decoder."""
    cmd = ["gst-launch-1.0", "-q", "concat", "name=c", "!", "fakesink", "sync=false"]
    for path in files:
        cmd += ["uridecodebin", f"uri=file://{path}", "!", "c."]
    return timed_baseline(cmd)


def count_frames(files, workdir):
    pattern = os.path.join(workdir, "seq-*.mp4")
    out = subprocess.run(["gst-launch-1.0", "splitmuxsrc", f"location={pattern}", "!",
                          "decodebin", "!", "identity", "silent=false", "!", "fakesink",
                          "sync=false", "-v"], capture_output=True, text=True, timeout=600)
    return out.stdout.count("chain   ******* (identity")


def machine():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    gst = subprocess.run(["gst-launch-1.0", "--version"], capture_output=True,
                         text=True).stdout.splitlines()
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"{gst[1] if len(gst) > 1 else 'GStreamer ?'}, load average "
            f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at start")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--engine", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--switches", type=int, default=500, help="switches for gap and RSS")
    ap.add_argument("--files", type=int, default=30, help="K, files per wall-time run")
    ap.add_argument("--per-process-files", type=int, default=15)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="ds-bench-") as work:
        desc = machine()
        clips = [make_clip(os.path.join(work, f"clip-{p}.mp4"), 60, pattern=p) for p in PATTERNS]
        config = write_config(os.path.join(work, "bench.txt"), 1)
        files_k = [clips[i % len(clips)] for i in range(args.files)]

        # 1. Switch gap and RSS over many switches on one long-lived engine.
        e = Engine(args.engine, config, work)
        rss = []
        try:
            c = e.connect()
            files = [clips[i % len(clips)] for i in range(args.switches + 1)]
            step = max(1, args.switches // 10)
            spans = play_sequence(c, files, on_done=lambda i: rss.append(
                (i, rss_kib(e.proc.pid))) if i % step == 0 else None)
            c.ok("shutdown")
            e.wait()
            c.close()
        finally:
            e.stop()
        g = gaps(spans)

        # 2. K files: back-to-back vs. decode-only vs. one process per file.
        b2b, dec, dec1, concat, spans_pp = [], [], [], [], []
        per_proc = []
        for _ in range(args.reps):
            wall, _ = back_to_back(args.engine, config, work, files_k)
            b2b.append(wall)
            dec.append(decode_only(files_k, work))
            dec1.append(decode_only(files_k, work, threads=1))
            concat.append(decode_only_concat(files_k))
        frames_dec = count_frames(files_k, work)
        wall_pp, spans_pp = process_per_file(args.engine, config, work,
                                             files_k[: args.per_process_files])
        per_proc.append(wall_pp)
        g_pp = gaps(spans_pp)

    b2b_med = statistics.median(b2b)
    dec_auto, dec_one = statistics.median(dec), statistics.median(dec1)
    dec_concat = statistics.median(concat)
    dec_med = min(dec_auto, dec_one)  # one decoder for all files: the strict limit
    pp_per_file = wall_pp / args.per_process_files
    warmup = min(100, args.switches // 5)
    warm = [r for i, r in rss if i >= warmup]  # once the allocator's arenas have grown
    drift = (max(warm) - min(warm)) / min(warm) * 100 if warm else float("nan")
    ratio = b2b_med / dec_concat
    ratio_strict = b2b_med / dec_med
    gap_ratio = statistics.median(g_pp) / statistics.median(g)

    rows = [
        ("switch gap median (ms)", f"{ms(statistics.median(g)):.2f}", "<= 10",
         statistics.median(g) <= 10e6),
        ("switch gap p99 (ms)", f"{ms(pct(g, 99)):.2f}", "<= 25", pct(g, 99) <= 25e6),
        ("switch gap max (ms)", f"{ms(max(g)):.2f}", "", None),
        ("switches measured", f"{len(g)}", ">= 100", len(g) >= 100),
        (f"back-to-back, {args.files} files (s, median of {args.reps})", f"{b2b_med:.3f}", "", None),
        (f"decode-only, concat of uridecodebins (s, median of {args.reps})", f"{dec_concat:.3f}",
         "", None),
        (f"decode-only, splitmuxsrc, 1 decoder, auto threads (s)", f"{dec_auto:.3f}", "", None),
        (f"decode-only, splitmuxsrc, 1 decoder, 1 thread (s)", f"{dec_one:.3f}", "", None),
        ("back-to-back / concat decode-only", f"{ratio:.3f}", "<= 1.10", ratio <= 1.10),
        ("back-to-back / fastest single-decoder decode-only", f"{ratio_strict:.3f}", "", None),
        (f"one process per file, {args.per_process_files} files (s/file)",
         f"{pp_per_file:.3f}", "", None),
        ("back-to-back (s/file)", f"{b2b_med / args.files:.3f}", "", None),
        ("gap, one process per file: median (ms)", f"{ms(statistics.median(g_pp)):.1f}", "",
         None),
        ("gap ratio process-per-file / back-to-back", f"{gap_ratio:.1f}x", ">= 10x",
         gap_ratio >= 10),
        (f"RSS over {args.switches} switches (KiB)",
         " ".join(str(r) for _, r in rss), "", None),
        (f"RSS (max-min)/min from switch {warmup} on (%)", f"{drift:.2f}", "<= 5", drift <= 5),
    ]
    w = max(len(r[0]) for r in rows)
    lines = [f"ds-gst-engine benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
             f"machine: {desc}",
             f"clips: 2 s, 640x360, 30 fps H.264/MP4 (x264 ultrafast), {len(PATTERNS)} patterns;"
             f" decode-only frames counted: {frames_dec} (expected {60 * args.files})",
             "",
             f"{'measure'.ljust(w)}  {'value':>12}  target  ok"]
    for name, value, target, ok in rows:
        flag = "" if ok is None else ("yes" if ok else "NO")
        if len(value) > 12:
            lines.append(f"{name.ljust(w)}  {value}")
        else:
            lines.append(f"{name.ljust(w)}  {value:>12}  {target:6}  {flag}")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
