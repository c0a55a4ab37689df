#!/usr/bin/env python3
"""GPU acceptance check: drives one engine over its control socket (docs/engine-protocol.md)
through the checks README.md "First run on a GPU" lists, prints one verdict line per
check and writes a summary table. Standard library only: it runs inside the DeepStream
7.1 image (Ubuntu 22.04's python3) as well as here against ds-gst-engine.

Verdicts: PASS, FAIL, SKIP (does not apply to this engine, or a tool is missing), INFO
(measured, not judged). Exit status 1 when any check FAILs, 2 on bad arguments."""
import argparse
import configparser
import json
import os
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

# The properties the adapter relies on, set by deepstream-app from the [streammux] and
# [tracker] groups of the shipped configs (native/deepstream/README.md).
MUX_PROPS = ["batch-size", "batched-push-timeout", "width", "height", "live-source",
             "sync-inputs", "drop-pipeline-eos", "enable-padding", "nvbuf-memory-type"]
TRACKER_PROPS = ["tracker-width", "tracker-height", "ll-lib-file", "ll-config-file",
                 "tracking-id-reset-mode"]
# A switch gap this long means a deadline expired (the adapter's drain or reset waits).
MAX_GAP_MS = 2000.0
# fps check: the one busy slot must reach this share of a slot's rate with all busy.
FPS_RATIO_MIN = 0.9
RESET_NOT_SEEN = "stream reset not seen"
# Streaming threads come and go with their fds (GstPoll pairs): a leak per file shows as
# about one fd per file, far above this.
FD_SLACK = 4

RESULTS = []


def verdict(name, v, detail):
    RESULTS.append((name, v, detail))
    print(f"{v:<4}  {name:<16} {detail}", flush=True)


class CheckFailed(Exception):
    """A check cannot go on; its message is the FAIL detail."""


# ---------- clips ----------

def _boxes(data, start, end):
    while start + 8 <= end:
        size, kind = struct.unpack(">I4s", data[start:start + 8])
        hdr = 8
        if size == 1:
            size, hdr = struct.unpack(">Q", data[start + 8:start + 16])[0], 16
        elif size == 0:
            size = end - start
        if size < hdr:
            return
        yield kind, start + hdr, start + size
        start += size


def mp4_video_frames(path):
    """Sample count of the first video track (stsz), read from the MP4 itself."""
    with open(path, "rb") as f:
        data = f.read()
    for kind, s, e in _boxes(data, 0, len(data)):
        if kind != b"moov":
            continue
        for tk, ts, te in _boxes(data, s, e):
            if tk != b"trak":
                continue
            mdia = next((b for b in _boxes(data, ts, te) if b[0] == b"mdia"), None)
            if mdia is None:
                continue
            sub = {k: (a, b) for k, a, b in _boxes(data, mdia[1], mdia[2])}
            if b"hdlr" not in sub or data[sub[b"hdlr"][0] + 8:sub[b"hdlr"][0] + 12] != b"vide":
                continue
            minf = sub.get(b"minf")
            stbl = next((b for b in _boxes(data, *minf) if b[0] == b"stbl"), None) if minf else None
            for k, a, _ in _boxes(data, stbl[1], stbl[2]) if stbl else []:
                if k == b"stsz":
                    return struct.unpack(">I", data[a + 8:a + 12])[0]
    raise ValueError(f"{path}: no video track")


def gst(*args, timeout=300, hang_ok=False):
    try:
        p = subprocess.run(["gst-launch-1.0", "-q", *args], timeout=timeout, text=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    except subprocess.TimeoutExpired:
        if hang_ok:
            return
        raise CheckFailed(f"gst-launch-1.0 {' '.join(args)}: no end within {timeout} s")
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        raise CheckFailed(f"gst-launch-1.0 {' '.join(args)}: {err[0] if err else p.returncode}")


def cut(src, outdir, seconds=2):
    """Consecutive segments of src, cut at keyframes without re-encoding: objects carry
    over from one segment to the next, as in the files of one camera."""
    os.makedirs(outdir, exist_ok=True)
    # gst-launch 1.20/1.22 sometimes never exits after splitmuxsink's last segment (~5 %
    # of runs here): give it a deadline, then keep the segments that are complete.
    gst("filesrc", f"location={src}", "!", "qtdemux", "name=d", "d.video_0", "!", "queue", "!",
        "h264parse", "!", "splitmuxsink", "async-finalize=true", f"location={outdir}/seg%03d.mp4",
        f"max-size-time={seconds * 1_000_000_000}", timeout=20, hang_ok=True)
    segs = []
    for n in sorted(os.listdir(outdir)):
        try:
            if n.endswith(".mp4") and mp4_video_frames(os.path.join(outdir, n)) > 0:
                segs.append(os.path.join(outdir, n))
        except (ValueError, struct.error):
            pass  # unfinished (no moov)
    return segs


def has_element(name):
    return subprocess.run(["gst-inspect-1.0", "--exists", name]).returncode == 0


def reencode(src, path):
    """src with a keyframe every 30 frames, so that it cuts into 2-s segments: x264enc
    where it exists, else NVENC (the DeepStream image has no x264enc)."""
    enc = (["x264enc", "speed-preset=ultrafast", "key-int-max=30"] if has_element("x264enc")
           else ["nvv4l2h264enc", "iframeinterval=30", "idrinterval=30"])
    gst("filesrc", f"location={src}", "!", "decodebin", "!", *enc, "!", "h264parse", "!",
        "mp4mux", "!", "filesink", f"location={path}")
    return path


def synth(path, frames, width, height, pattern="ball"):
    """A synthetic H.264 clip (needs x264enc: Debian, not the DeepStream image)."""
    gst("videotestsrc", f"num-buffers={frames}", f"pattern={pattern}", "!",
        f"video/x-raw,format=I420,width={width},height={height},framerate=30/1", "!",
        "x264enc", "speed-preset=ultrafast", "key-int-max=30", "!", "h264parse", "!",
        "mp4mux", "!", "filesink", f"location={path}")
    return path


class Clip:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.uri = "file://" + self.path
        self.frames = mp4_video_frames(path)

    def __repr__(self):
        return f"{os.path.basename(self.path)} ({self.frames} frames)"


def make_clips(args, d):
    """cam: five consecutive segments of one scene; long: a longer clip of the same scene;
    r720/r1080: one 720p and one 1080p clip."""
    # Looked up here, at run time, not when the image is built: a plugin scan during the
    # build would leave a registry with every DeepStream plugin marked as failed.
    missing = [e for e in ("qtdemux", "h264parse", "splitmuxsink") if not has_element(e)]
    if missing:
        raise CheckFailed("gpu-check needs " + ", ".join(missing) + " (gstreamer1.0-plugins-"
                          "good/-bad; the image installs them with user_additional_install.sh)")
    os.makedirs(d, exist_ok=True)
    if args.samples:
        s720 = os.path.join(args.samples, "sample_720p.mp4")
        s1080 = os.path.join(args.samples, "sample_1080p_h264.mp4")
        for s in (s720, s1080):
            if not os.path.isfile(s):
                raise CheckFailed(f"sample clip {s} missing")
        long_src, r1080_src = s720, s1080
    else:
        long_src = synth(os.path.join(d, "scene.mp4"), args.long_frames, 640, 360)
        r1080_src = synth(os.path.join(d, "r1080.mp4"), 60, 1920, 1080, "smpte")
    segs = cut(long_src, os.path.join(d, "cam"))
    if len(segs) < 6:  # keyframes too far apart
        long_src = reencode(long_src, os.path.join(d, "scene-gop30.mp4"))
        segs = cut(long_src, os.path.join(d, "cam-gop30"))
    if len(segs) < 6:
        raise CheckFailed(f"{long_src} gave {len(segs)} segments of 2 s, need 6")
    clips = {"cam": [Clip(s) for s in segs[:6]], "long": Clip(long_src)}
    if args.samples:
        clips["r720"] = clips["cam"][0]
        clips["r1080"] = Clip(cut(r1080_src, os.path.join(d, "r1080"))[0])
    else:
        clips["r720"] = Clip(synth(os.path.join(d, "r720.mp4"), 60, 1280, 720, "smpte"))
        clips["r1080"] = Clip(r1080_src)
    return clips


# ---------- the engine ----------

class Engine:
    """The engine process and its one control connection; events queue in order."""

    def __init__(self, args, run_dir):
        self.args = args
        self.sock_dir = tempfile.mkdtemp(prefix="gpuchk")  # short: sun_path limit
        self.sock_path = os.path.join(self.sock_dir, "engine.sock")
        self.log_path = os.path.join(run_dir, "engine.log")
        env = dict(os.environ, DS_CONTROL_SOCKET=self.sock_path)
        self.log = open(self.log_path, "wb")
        self.started = time.monotonic()
        self.proc = subprocess.Popen([args.engine, "-c", args.config], cwd=args.workdir, env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.sock = None
        self.buf = b""
        self.events = []
        self.next_id = 1

    def connect(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise CheckFailed(f"engine exited with {self.proc.returncode} before its socket "
                                  f"opened (log: {self.log_path})")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(self.sock_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
                if time.monotonic() > deadline:
                    raise CheckFailed(f"no control socket within {timeout:.0f} s")
                time.sleep(0.02)
        self.sock = s
        ev = self._line(deadline)
        if ev != {"event": "ready"}:
            raise CheckFailed(f"expected the ready event, got {ev}")
        return time.monotonic() - self.started

    def _line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckFailed("timed out waiting for the engine")
            r, _, _ = select.select([self.sock], [], [], min(left, 1.0))
            if not r:
                if self.proc.poll() is not None:
                    raise CheckFailed(f"engine exited with {self.proc.returncode}")
                continue
            data = self.sock.recv(1 << 16)
            if not data:
                raise CheckFailed(f"engine closed the connection (exit {self.proc.poll()})")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def request(self, op, timeout=30.0, **fields):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall((json.dumps(dict(fields, id=rid, op=op)) + "\n").encode())
        deadline = time.monotonic() + timeout
        while True:
            m = self._line(deadline)
            if "event" in m:
                self.events.append(m)
            elif m.get("id") == rid:
                if not m.get("ok"):
                    raise CheckFailed(f"{op} {fields} refused: {m.get('error')}")
                return m
            else:
                raise CheckFailed(f"reply {m} does not answer request {rid}")

    def event(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            m = self._line(deadline)
            if "event" not in m:
                raise CheckFailed(f"unexpected reply {m}")
            if m["event"] == "fatal":
                raise CheckFailed(f"engine fatal: {m.get('error')}")
            self.events.append(m)

    def file_end(self, slot, file_id, timeout):
        e = self.event(lambda e: e.get("event") in ("file_done", "file_error")
                       and e.get("slot") == slot and e.get("file_id") == file_id, timeout)
        if e["event"] == "file_error":
            raise CheckFailed(f"slot {slot} file {file_id}: file_error {e.get('error')}")
        return e

    def started_ev(self, slot, file_id, timeout):
        return self.event(lambda e: e.get("event") == "file_started" and e.get("slot") == slot
                          and e.get("file_id") == file_id, timeout)

    def rss_kb(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def log_text(self):
        self.log.flush()
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def shutdown(self, timeout):
        """shutdown op, then SIGTERM, then SIGKILL; returns the exit status or None."""
        code = None
        try:
            if self.sock is not None and self.proc.poll() is None:
                self.request("shutdown", timeout=5)
            code = self.proc.wait(timeout=timeout)
        except (CheckFailed, OSError, subprocess.TimeoutExpired):
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        if self.sock is not None:
            self.sock.close()
        self.log.close()
        shutil.rmtree(self.sock_dir, ignore_errors=True)
        return code


# ---------- per-file output ----------

class Output:
    """One per-file output, parsed by the engine's format (docs/engine-protocol.md,
    native/deepstream/README.md "Per-file output")."""

    def __init__(self, path, kind):
        self.lines = []  # (frame index in file, camera_frame, track_id or None)
        with open(path) as f:
            for n, line in enumerate(f, 1):
                p = line.split()
                if kind == "gst":
                    if len(p) != 3:
                        raise CheckFailed(f"{path}:{n}: not 3 fields")
                    self.lines.append((int(p[1]), int(p[0]), None))
                else:
                    if len(p) != 21:
                        raise CheckFailed(f"{path}:{n}: not 21 fields")
                    self.lines.append((int(p[0]), int(p[18]), int(p[1])))
        self.frames = sorted({ln[0] for ln in self.lines})
        self.ids = {ln[2] for ln in self.lines if ln[2] is not None and ln[2] >= 0}

    def ids_between(self, lo, hi):
        return {ln[2] for ln in self.lines if lo <= ln[0] < hi and ln[2] is not None and ln[2] >= 0}


def check_file(kind, out, frames, cam_offset, what):
    """Frame accounting of one finished file. gst: one line per frame, so lines = frames
    and file_frame runs 0..frames-1. DeepStream: lines per object, frames without objects
    write none, so the distinct frame indices are a subset of 0..frames-1. Both:
    camera_frame = cam_offset + frame index on every line."""
    if kind == "gst":
        if len(out.lines) != frames or out.frames != list(range(frames)):
            raise CheckFailed(f"{what}: {len(out.lines)} lines for {frames} frames")
    elif out.frames and (out.frames[0] < 0 or out.frames[-1] >= frames):
        raise CheckFailed(f"{what}: frame index {out.frames[-1]} outside 0..{frames - 1}")
    bad = [ln for ln in out.lines if ln[1] != cam_offset + ln[0]]
    if bad:
        raise CheckFailed(f"{what}: camera_frame {bad[0][1]} at frame {bad[0][0]}, want "
                          f"{cam_offset + bad[0][0]}")


class Run:
    def __init__(self, args, eng, clips, run_dir):
        self.args, self.eng, self.clips = args, eng, clips
        self.kind = args.kind
        self.ds = args.kind != "gst"  # the adapter's output: track IDs
        self.out_dir = os.path.join(run_dir, "files")
        os.makedirs(self.out_dir, exist_ok=True)
        self.file_id = 0

    def play(self, slot, clip, new_camera):
        self.file_id += 1
        path = os.path.join(self.out_dir, f"s{slot}-f{self.file_id}.txt")
        self.eng.request("play", slot=slot, file_id=self.file_id, uri=clip.uri,
                         new_camera=new_camera, output_path=path)
        return self.file_id, path

    def play_through(self, slot, clip, new_camera):
        """Plays one file to its end: (file_started, file_done, output path)."""
        fid, path = self.play(slot, clip, new_camera)
        st = self.eng.started_ev(slot, fid, self.args.file_timeout)
        done = self.eng.file_end(slot, fid, self.args.file_timeout)
        if done["frames"] != clip.frames:
            raise CheckFailed(f"{clip}: file_done.frames {done['frames']}")
        return st, done, path

    def detections(self, out, what):
        if self.ds and not out.ids:
            raise CheckFailed(f"{what}: no tracked objects (is the model in place and right?)")


def gaps_ms(pairs):
    return [(st["mono_ns"] - done["mono_ns"]) / 1e6 for done, st in pairs]


def dist(v):
    if not v:
        return "n/a"
    v = sorted(v)
    p95 = v[min(len(v) - 1, int(round(0.95 * (len(v) - 1))))]
    return f"median {statistics.median(v):.1f} / p95 {p95:.1f} / max {v[-1]:.1f} ms"


# ---------- the checks ----------

def check_camera(r):
    """Five files back-to-back on slot 0, one camera."""
    offset, prev, pairs, carried = 0, None, [], []
    prev_out = None
    for i, clip in enumerate(r.clips["cam"][:5]):
        st, done, path = r.play_through(0, clip, new_camera=(i == 0))
        if prev is not None:
            pairs.append((prev, st))
        out = Output(path, r.kind)
        check_file(r.kind, out, clip.frames, offset, f"file {i + 1}")
        r.detections(out, f"file {i + 1}")
        offset += clip.frames
        if done["camera_frames"] != offset:
            raise CheckFailed(f"file {i + 1}: camera_frames {done['camera_frames']}, want {offset}")
        if prev_out is not None and r.ds:
            carried.append(len(prev_out.ids & out.ids))
        prev, prev_out = done, out
    gaps = gaps_ms(pairs)
    detail = f"5 files, {offset} frames, camera_frame continuous; gaps {dist(gaps)}"
    if r.ds:
        if not all(carried):
            raise CheckFailed(f"track IDs shared with the previous file: {carried} (0 = not carried)")
        detail += f"; IDs carried into files 2-5: {carried}"
    if max(gaps) >= MAX_GAP_MS:
        raise CheckFailed(f"a switch gap reached {max(gaps):.0f} ms ({detail})")
    return "PASS", detail


def check_new_camera(r):
    """Slot 1 plays a long file of camera B; slot 0 plays camera A, then camera C."""
    cam, long = r.clips["cam"], r.clips["long"]
    log_before = r.eng.log_text().count(RESET_NOT_SEEN)
    b_id, b_path = r.play(1, long, new_camera=True)
    r.eng.started_ev(1, b_id, r.args.file_timeout)
    _, _, a_path = r.play_through(0, cam[0], new_camera=True)
    prog = r.eng.request("progress")["slots"][1]
    if prog["state"] != "playing" or prog["file_id"] != b_id:
        raise CheckFailed("slot 1 finished before slot 0's new camera: inconclusive (longer clip)")
    b_at_reset = prog["frames"]
    # Camera C is the scene's next segment: without a reset its objects would keep A's IDs.
    _, _, c_path = r.play_through(0, cam[1], new_camera=True)
    b_done = r.eng.file_end(1, b_id, r.args.file_timeout)
    if b_done["frames"] != long.frames:
        raise CheckFailed(f"slot 1: file_done.frames {b_done['frames']}, want {long.frames}")
    a, c, b = Output(a_path, r.kind), Output(c_path, r.kind), Output(b_path, r.kind)
    check_file(r.kind, c, cam[1].frames, 0, "camera C (slot 0)")
    check_file(r.kind, b, long.frames, 0, "camera B (slot 1)")
    not_seen = r.eng.log_text().count(RESET_NOT_SEEN) - log_before
    if not_seen:
        raise CheckFailed(f'engine log: "{RESET_NOT_SEEN}" x{not_seen}')
    detail = f"slot 1 at frame {b_at_reset} of {long.frames} when slot 0 reset; camera C from 0"
    if r.ds:
        for o, w in ((a, "camera A"), (c, "camera C"), (b, "camera B")):
            r.detections(o, w)
        if a.ids & c.ids:
            raise CheckFailed(f"camera C on slot 0 kept {len(a.ids & c.ids)} IDs of camera A")
        margin = 30  # frames of slot 1 that may have been in flight at the reset
        across = b.ids_between(0, b_at_reset) & b.ids_between(b_at_reset + margin, long.frames)
        if not across:
            raise CheckFailed("no track on slot 1 spans slot 0's reset: slot 1 lost its tracks")
        detail += f"; C's IDs all new; {len(across)} slot-1 tracks span the reset"
    return "PASS", detail + f'; no "{RESET_NOT_SEEN}"'


def check_stop(r):
    """Stop camera D mid-file on slot 2, then play camera E: nothing of D in E's output."""
    cam, long = r.clips["cam"], r.clips["long"]
    d_id, d_path = r.play(2, long, new_camera=True)
    r.eng.started_ev(2, d_id, r.args.file_timeout)
    deadline = time.monotonic() + r.args.file_timeout
    while r.eng.request("progress")["slots"][2]["frames"] < 10:
        if time.monotonic() > deadline:
            raise CheckFailed("slot 2 never reached frame 10")
        time.sleep(0.005)
    stop = r.eng.request("stop", slot=2)
    if not stop.get("was_playing") or stop.get("file_id") != d_id:
        raise CheckFailed(f"stop reply {stop}: the file had ended already (longer clip)")
    # E is the scene's first segment again, where D was stopped: without the reset D's
    # tracks would pick E's objects up under D's IDs.
    _, _, e_path = r.play_through(2, cam[0], new_camera=True)
    late = [e for e in r.eng.events if e.get("file_id") == d_id]
    if late:
        raise CheckFailed(f"event for the stopped file: {late[0]}")
    d, e = Output(d_path, r.kind), Output(e_path, r.kind)
    if r.kind == "gst" and len(d.lines) != stop["frames"]:
        raise CheckFailed(f"stopped file: {len(d.lines)} lines, stop reply frames {stop['frames']}")
    check_file(r.kind, e, cam[0].frames, 0, "camera E")
    detail = f"stopped at frame {stop['frames']}; camera E: {len(e.lines)} lines, all its own"
    if r.ds:
        r.detections(e, "camera E")
        if d.ids & e.ids:
            raise CheckFailed(f"camera E's output holds {len(d.ids & e.ids)} track IDs of camera D")
        detail += ", no ID of camera D"
    return "PASS", detail


def fps(st, done, frames):
    return frames / max((done["mono_ns"] - st["mono_ns"]) / 1e9, 1e-9)


def check_fps(r, nvml_samples):
    long = r.clips["long"]
    st, done, _ = r.play_through(0, long, new_camera=True)
    one = fps(st, done, long.frames)
    ids = [r.play(s, long, new_camera=True)[0] for s in range(4)]
    sts = [r.eng.started_ev(s, ids[s], r.args.file_timeout) for s in range(4)]
    nvml_samples.append(nvidia_smi())
    dones = [r.eng.file_end(s, ids[s], r.args.file_timeout) for s in range(4)]
    four = [fps(sts[s], dones[s], long.frames) for s in range(4)]
    mean4 = statistics.mean(four)
    ratio = one / mean4
    detail = (f"1 of 4 busy: {one:.0f} fps; 4 of 4: {', '.join(f'{f:.0f}' for f in four)} fps "
              f"per slot (sum {sum(four):.0f}); ratio {ratio:.2f}")
    if not r.ds:
        # No shared muxer: the slots are independent branches on the CPU.
        return "INFO", detail + " (gst: slots share no muxer, not judged)"
    # A busy slot alone must not be slower than each of four sharing the GPU: idle slots
    # that hold every batch for batched-push-timeout make it slower.
    if ratio < FPS_RATIO_MIN:
        raise CheckFailed(detail + f" < {FPS_RATIO_MIN}: idle slots throttle the busy one")
    return "PASS", detail + f" >= {FPS_RATIO_MIN}"


def check_resolution(r):
    offset = 0
    for i, clip in enumerate((r.clips["r720"], r.clips["r1080"])):
        _, _, path = r.play_through(3, clip, new_camera=(i == 0))
        out = Output(path, r.kind)
        check_file(r.kind, out, clip.frames, offset, str(clip))
        offset += clip.frames
    return "PASS", f"{r.clips['r720']} then {r.clips['r1080']} on slot 3, one camera"


def check_soak(r, n):
    """n files over the 4 slots, each started as soon as its slot's last one ends; a new
    camera every 5 files of a slot. Fails on any file error or frame mismatch, a switch gap
    of MAX_GAP_MS or more, open fds up by more than FD_SLACK, an RSS peak in the second
    half over the first half's by max(32 MiB, 10 %), GPU memory growth over 256 MiB."""
    pool = r.clips["cam"]
    rss, fds, gpu, peaks = [], [], [], []
    gaps, played, done_n = [], 0, 0
    last_done = [None] * 4
    slot_files = [0] * 4
    cam_offset = [0] * 4  # camera_frame of the slot's next frame
    pending = {}  # file_id → (slot, clip, path, camera_frame offset)

    def start(slot):
        nonlocal played
        clip = pool[played % len(pool)]
        new = slot_files[slot] % 5 == 0
        if new:
            cam_offset[slot] = 0
        fid, path = r.play(slot, clip, new_camera=new)
        pending[fid] = (slot, clip, path, cam_offset[slot])
        slot_files[slot] += 1
        cam_offset[slot] += clip.frames
        played += 1

    # Measured with every slot idle: before the first file (the checks before have warmed
    # the engine up) and after the last.
    rss.append(r.eng.rss_kb())
    fds.append(r.eng.fds())
    gpu.append(gpu_mem_mib(r.eng.proc.pid))
    for s in range(4):
        start(s)
    t0 = time.monotonic()
    while pending:
        e = r.eng.event(lambda e: e.get("event") in ("file_started", "file_done", "file_error")
                        and e.get("file_id") in pending, r.args.file_timeout)
        fid = e["file_id"]
        slot, clip, path, offset = pending[fid]
        if e["event"] == "file_started":
            if last_done[slot] is not None:
                gaps.append((e["mono_ns"] - last_done[slot]) / 1e6)
            continue
        if e["event"] == "file_error":
            raise CheckFailed(f"file {done_n + 1} ({clip}) on slot {slot}: {e.get('error')}")
        del pending[fid]
        done_n += 1
        if e["frames"] != clip.frames:
            raise CheckFailed(f"{clip} on slot {slot}: file_done.frames {e['frames']}")
        out = Output(path, r.kind)
        check_file(r.kind, out, clip.frames, offset, f"soak file {done_n}")
        os.unlink(path)
        last_done[slot] = e["mono_ns"]
        peaks.append(r.eng.rss_kb())
        if played < n:
            start(slot)
    took = time.monotonic() - t0
    rss.append(r.eng.rss_kb())
    # The DeepStream adapter takes a slot's source down off the main loop after its
    # file_done: give the last ones a moment to close their files.
    low, deadline = r.eng.fds(), time.monotonic() + 5
    while low > fds[0] + FD_SLACK and time.monotonic() < deadline:
        time.sleep(0.05)
        low = min(low, r.eng.fds())
    fds.append(low)
    gpu.append(gpu_mem_mib(r.eng.proc.pid))
    # Decoders and buffer pools come and go with every file, so RSS rises at first and
    # then moves within a band: a leak shows as the second half's peak above the first's.
    half = max(1, len(peaks) // 2)
    peak1, peak2 = max(peaks[:half]), max(peaks[half:] or peaks[:half])
    grow = (peak2 - peak1) / 1024
    detail = (f"{n} files in {took:.1f} s; RSS {rss[0] / 1024:.0f} → {rss[-1] / 1024:.0f} MiB "
              f"(peak {peak1 / 1024:.0f} in the first half, {peak2 / 1024:.0f} in the second); "
              f"fds {fds[0]} → {fds[-1]}; gaps {dist(gaps)}")
    if gpu[0] is not None and gpu[-1] is not None:
        detail += f"; GPU memory {gpu[0]} → {gpu[-1]} MiB"
        if gpu[-1] - gpu[0] > 256:
            raise CheckFailed(detail + ": GPU memory grew over 256 MiB")
    limit = max(32.0, peak1 / 1024 * 0.10)
    if grow > limit:
        raise CheckFailed(detail + f": RSS peak grew {grow:.0f} MiB (limit {limit:.0f})")
    if fds[-1] - fds[0] > FD_SLACK:
        raise CheckFailed(detail + f": open file descriptors grew by more than {FD_SLACK}")
    if gaps and max(gaps) >= MAX_GAP_MS:
        raise CheckFailed(detail + f": a switch gap reached {max(gaps):.0f} ms")
    return "PASS", detail


def nvidia_smi():
    """GPU rows (index, name, util %, memory used/total MiB, driver), or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,utilization.gpu,memory.used,"
                              "memory.total,driver_version", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    return [[c.strip() for c in line.split(",")] for line in out.strip().splitlines()]


def gpu_mem_mib(pid):
    """The engine's GPU memory (MiB) from nvidia-smi; inside a container nvidia-smi often
    lists no process, then the first GPU's used memory. None without nvidia-smi."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=20, check=True).stdout
    except (subprocess.SubprocessError, OSError):
        return None
    for line in out.splitlines():
        p = [c.strip() for c in line.split(",")]
        if len(p) == 2 and p[0] == str(pid) and p[1].isdigit():
            return int(p[1])
    rows = nvidia_smi()
    return int(rows[0][3]) if rows and rows[0][3].isdigit() else None


def check_nvml(samples):
    rows = next((s for s in samples if s), None) or nvidia_smi()
    if rows is None:
        return "SKIP", "no nvidia-smi (no NVIDIA driver)"
    return "PASS", "; ".join(f"GPU {r[0]} {r[1]}: {r[2]} % util, {r[3]}/{r[4]} MiB, driver {r[5]}"
                             for r in rows) + (" (sampled with 4 slots busy)" if samples and samples[0] else "")


# ---------- configuration ----------

def read_config(path):
    cp = configparser.ConfigParser(interpolation=None, strict=False, comment_prefixes=("#",))
    cp.read(path)
    return cp


def model_files(config):
    """(onnx-file, model-engine-file) the config names, resolved as deepstream-app does
    (relative to the file that names them)."""
    app = read_config(config)
    base = os.path.dirname(os.path.abspath(config))
    engine_file = onnx = None
    if app.has_section("primary-gie"):
        g = app["primary-gie"]
        if g.get("model-engine-file"):
            engine_file = os.path.join(base, g["model-engine-file"])
        if g.get("config-file"):
            infer_path = os.path.join(base, g["config-file"])
            inf = read_config(infer_path)
            if inf.has_section("property"):
                p = inf["property"]
                ibase = os.path.dirname(infer_path)
                if p.get("onnx-file"):
                    onnx = os.path.join(ibase, p["onnx-file"])
                if not engine_file and p.get("model-engine-file"):
                    engine_file = os.path.join(ibase, p["model-engine-file"])
    return onnx, engine_file


def check_properties():
    missing = []
    for element, props in (("nvstreammux", MUX_PROPS), ("nvtracker", TRACKER_PROPS)):
        try:
            out = subprocess.run(["gst-inspect-1.0", element], capture_output=True, text=True,
                                 timeout=60).stdout
        except (subprocess.SubprocessError, OSError) as e:
            raise CheckFailed(f"gst-inspect-1.0 {element}: {e}")
        if not out:
            raise CheckFailed(f"gst-inspect-1.0 finds no {element}")
        names = {line.split(":")[0].strip() for line in out.splitlines() if ":" in line}
        missing += [f"{element}.{p}" for p in props if p not in names]
        if element == "nvstreammux" and "sink_%u" not in out:
            missing.append("nvstreammux sink_%u pad template")
    if missing:
        raise CheckFailed("missing: " + ", ".join(missing))
    return "PASS", (f"nvstreammux: {', '.join(MUX_PROPS)}; nvtracker: {', '.join(TRACKER_PROPS)}")


# ---------- main ----------

def write_table(args, run_dir, started):
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    path = os.path.join(args.out, f"gpu-check-{stamp}.md")
    lines = [f"# gpu-check {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(started))}", "",
             f"engine `{args.engine}` ({args.kind}), config `{args.config}`, work dir "
             f"`{args.workdir}`, run files `{run_dir}`", "",
             "| check | verdict | detail |", "|---|---|---|"]
    lines += [f"| {n} | {v} | {d.replace('|', '/')} |" for n, v, d in RESULTS]
    fails = sum(v == "FAIL" for _, v, _ in RESULTS)
    lines += ["", f"{len(RESULTS)} checks: {fails} failed, "
              f"{sum(v == 'SKIP' for _, v, _ in RESULTS)} skipped"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n" + "\n".join(lines) + f"\n\nwritten to {path}", flush=True)
    return fails


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kind", choices=["deepstream", "standin", "gst"], required=True)
    ap.add_argument("--engine", required=True, help="engine executable")
    ap.add_argument("--config", required=True, help="deepstream-app config with 4 slots")
    ap.add_argument("--workdir", help="engine working directory (default: the config's)")
    ap.add_argument("--out", default="gpu-check-out", help="folder for the table and run files")
    ap.add_argument("--samples", help="folder with sample_720p.mp4 and sample_1080p_h264.mp4 "
                    "(default: synthetic clips, needs x264enc)")
    ap.add_argument("--soak-clips", type=int, default=300)
    ap.add_argument("--long-frames", type=int, default=900, help="synthetic scene length")
    ap.add_argument("--start-timeout", type=float, default=1800.0,
                    help="seconds to ready (the first DeepStream start builds the TensorRT engine)")
    ap.add_argument("--file-timeout", type=float, default=120.0, help="seconds per file")
    args = ap.parse_args()
    args.config = os.path.abspath(args.config)
    args.workdir = os.path.abspath(args.workdir or os.path.dirname(args.config))
    args.out = os.path.abspath(args.out)
    for p, what in ((args.engine, "engine"), (args.config, "config")):
        if not os.path.isfile(p):
            print(f"gpu-check: {what} {p} not found", file=sys.stderr)
            return 2
    if not os.path.isdir(args.workdir):
        print(f"gpu-check: work dir {args.workdir} not found", file=sys.stderr)
        return 2
    started = time.time()
    run_dir = os.path.join(args.out, "run-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime(started)))
    os.makedirs(run_dir, exist_ok=True)
    ds = args.kind == "deepstream"  # the real SDK: elements, model, TensorRT, NVML
    who = "the stand-in" if args.kind == "standin" else "gst engine"

    def step(name, fn, *a, skip=None):
        if skip:
            verdict(name, "SKIP", skip)
            return True
        try:
            v, detail = fn(*a)
        except CheckFailed as e:
            verdict(name, "FAIL", str(e))
            return False
        verdict(name, v, detail)
        return True

    step("properties", check_properties, skip=None if ds else f"{who}: no nvstreammux/nvtracker")
    onnx, engine_file = model_files(args.config)
    had_engine = bool(engine_file) and os.path.isfile(engine_file)

    def check_model():
        if had_engine:
            return "PASS", f"TensorRT engine {engine_file} present"
        if onnx and os.path.isfile(onnx):
            return "PASS", f"{onnx} present; no engine yet: the first start builds {engine_file}"
        raise CheckFailed(f"neither {engine_file} nor {onnx}: put the model in place "
                          "(docker/README.md \"The model\")")
    if not step("model", check_model, skip=None if ds else f"{who}: no model"):
        return write_table(args, run_dir, started) and 1

    clips = None
    try:
        clips = make_clips(args, os.path.join(run_dir, "clips"))
    except (CheckFailed, subprocess.SubprocessError, OSError, ValueError) as e:
        verdict("clips", "FAIL", str(e))
        return write_table(args, run_dir, started) and 1

    eng = Engine(args, run_dir)
    nvml_samples = []
    ok = True
    try:
        def hello():
            took = eng.connect(args.start_timeout)
            h = eng.request("hello")
            want = {"ready": True, "engine": "gst" if args.kind == "gst" else "deepstream",
                    "protocol": 1, "streams": 4}
            bad = {k: h.get(k) for k, v in want.items() if h.get(k) != v}
            if bad:
                raise CheckFailed(f"hello {h}: want {want}")
            return "PASS", (f"ready after {took:.1f} s; {h['engine']} {h['version']}, "
                            f"{h['streams']} slots, gpu_ids {h['gpu_ids']}")
        ok = step("hello", hello)

        def trt():
            if not engine_file or not os.path.isfile(engine_file):
                raise CheckFailed(f"{engine_file} absent after ready: the next start builds it "
                                  f"again (engine work dir {args.workdir})")
            return "PASS", f"{engine_file} {'loaded' if had_engine else 'built by this start'}"
        r = Run(args, eng, clips, run_dir)
        checks = [("trt-engine", trt, ()) if ds else ("trt-engine", None, f"{who}: no TensorRT"),
                  ("camera-5-files", check_camera, (r,)),
                  ("new-camera", check_new_camera, (r,)),
                  ("stop-mid-file", check_stop, (r,)),
                  ("fps-1-vs-4", check_fps, (r, nvml_samples)),
                  ("720p-then-1080p", check_resolution, (r,)),
                  ("soak", check_soak, (r, args.soak_clips))]
        for name, fn, a in checks:
            if fn is None:
                verdict(name, "SKIP", a)
            elif not ok:
                verdict(name, "FAIL", "not run: the engine is not usable")
            elif not step(name, fn, *a) and name != "trt-engine":
                # Stop whatever the failed check left playing, then go on.
                ok = eng.proc.poll() is None
                try:
                    for slot in range(4 if ok else 0):
                        eng.request("stop", slot=slot)
                except (CheckFailed, OSError):
                    ok = False
                eng.events.clear()
    finally:
        step("nvml", check_nvml, nvml_samples)
        code = eng.shutdown(timeout=30)
        verdict("shutdown", "PASS" if code == 0 else "FAIL", f"engine exit status {code}")
    fails = write_table(args, run_dir, started)
    if not fails:
        shutil.rmtree(os.path.join(run_dir, "clips"), ignore_errors=True)
        shutil.rmtree(os.path.join(run_dir, "files"), ignore_errors=True)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
