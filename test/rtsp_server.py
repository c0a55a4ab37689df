#!/usr/bin/python3
"""A standalone RTSP server for the tests: one H.264 clip, looped at real time.

    /usr/bin/python3 test/rtsp_server.py --port P [--path cam]
        [--clip file.mp4 | --fps 30 --size 320x180] [--user u --password p]

Prints `ready rtsp://127.0.0.1:P/cam` on stdout once it accepts connections (with
`--port 0` the port is the one the system chose); SIGTERM or SIGINT stops it, exit 0.

The clip (given, or generated once from videotestsrc) is held in memory as H.264 access
units and pushed into each client's pipeline on a real-time schedule, so serving costs no
encoding and a client that (re)connects at any moment gets SPS/PPS with the next key frame.
Paths other than --path answer 404; with --user/--password other credentials answer 401.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from typing import List, Tuple

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtspServer  # noqa: E402

GENERATED_SECONDS = 4


def _collect(description: str) -> Tuple[List[bytes], Tuple[int, int]]:
    """Runs `description` (ending in `appsink name=out`) to EOS; returns its buffers'
    bytes and the stream's frame rate (num, den)."""
    pipeline = Gst.parse_launch(description)
    sink = pipeline.get_by_name("out")
    frames: List[bytes] = []
    rate = (0, 1)
    pipeline.set_state(Gst.State.PLAYING)
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        if rate == (0, 1):
            ok, num, den = sample.get_caps().get_structure(0).get_fraction("framerate")
            if ok and num > 0:
                rate = (num, den)
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        if ok:
            frames.append(bytes(info.data))
            buf.unmap(info)
    bus = pipeline.get_bus()
    err = bus.pop_filtered(Gst.MessageType.ERROR)
    pipeline.set_state(Gst.State.NULL)
    if err is not None:
        raise SystemExit(f"rtsp_server: cannot read the clip: {err.parse_error()[0].message}")
    if not frames:
        raise SystemExit("rtsp_server: the clip has no video frames")
    return frames, rate


def load_clip(path: str) -> Tuple[List[bytes], Tuple[int, int]]:
    loc = GLib.strescape(path)
    return _collect(
        f'filesrc location="{loc}" ! parsebin ! h264parse config-interval=-1 ! '
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=out sync=false")


def generate_clip(fps: int, width: int, height: int) -> Tuple[List[bytes], Tuple[int, int]]:
    frames, _ = _collect(
        f"videotestsrc num-buffers={fps * GENERATED_SECONDS} pattern=ball ! "
        f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! "
        f"x264enc speed-preset=ultrafast tune=zerolatency key-int-max={fps} ! "
        "h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out sync=false")
    return frames, (fps, 1)


class Feeder:
    """Pushes the clip into one media's appsrc at real time until the media goes away."""

    def __init__(self, appsrc: GstApp.AppSrc, frames: List[bytes], rate: Tuple[int, int]):
        self.appsrc = appsrc
        self.frames = frames
        self.period = rate[1] / rate[0]
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def _run(self) -> None:
        start = time.monotonic()
        n = 0
        while not self.stopped.is_set():
            due = start + n * self.period
            delay = due - time.monotonic()
            if delay > 0 and self.stopped.wait(delay):
                break
            buf = Gst.Buffer.new_wrapped(self.frames[n % len(self.frames)])
            buf.duration = int(self.period * Gst.SECOND)
            if self.appsrc.push_buffer(buf) != Gst.FlowReturn.OK:
                break  # flushing or gone: the client left
            n += 1


class Factory(GstRtspServer.RTSPMediaFactory):
    def __init__(self, frames: List[bytes], rate: Tuple[int, int]):
        super().__init__()
        self.frames = frames
        self.rate = rate
        self.set_launch(
            "( appsrc name=src is-live=true do-timestamp=true format=time "
            f"caps=video/x-h264,stream-format=byte-stream,alignment=au,"
            f"framerate={rate[0]}/{rate[1]} ! h264parse config-interval=-1 ! "
            "rtph264pay name=pay0 pt=96 config-interval=-1 )")
        self.connect("media-configure", self._configure)

    def _configure(self, _factory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        feeder = Feeder(appsrc, self.frames, self.rate)
        media.connect("unprepared", lambda _m: feeder.stop())
        feeder.start()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="cam")
    ap.add_argument("--clip")
    ap.add_argument("--fps", type=int, default=30)
    ap.add_argument("--size", default="320x180")
    ap.add_argument("--user")
    ap.add_argument("--password")
    args = ap.parse_args()
    if (args.user is None) != (args.password is None):
        ap.error("--user and --password go together")
    if args.fps <= 0:
        ap.error("--fps must be positive")
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        ap.error("--size is WIDTHxHEIGHT")

    Gst.init(None)
    if args.clip:
        frames, rate = load_clip(args.clip)
    else:
        frames, rate = generate_clip(args.fps, width, height)

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = Factory(frames, rate)
    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", args.user)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role(args.user, "media.factory.access", True)
        perms.add_permission_for_role(args.user, "media.factory.construct", True)
        factory.set_permissions(perms)
    server.get_mount_points().add_factory("/" + args.path.lstrip("/"), factory)

    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        return 1
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}/{args.path.lstrip('/')}",
          flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
