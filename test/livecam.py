"""Live cameras for the demo and the tests: a real-time H.264/MPEG-TS stream that
gst-launch-1.0 sends to a local UDP port, and an RTSP camera (test/rtsp_server.py) that
can be killed and started again on its port."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import time
from typing import List, Optional, Tuple

RTSP_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rtsp_server.py")


def start(width: int, height: int) -> Tuple[subprocess.Popen, str]:
    """Starts the stream in its own session; returns the process and its
    `udp://127.0.0.1:P` URI."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    writer = subprocess.Popen(
        ["gst-launch-1.0", "-q", "videotestsrc", "is-live=true", "pattern=ball", "!",
         f"video/x-raw,format=I420,width={width},height={height},framerate=30/1", "!", "x264enc",
         "speed-preset=ultrafast", "tune=zerolatency", "key-int-max=30", "!", "h264parse", "!",
         "mpegtsmux", "!", "udpsink", "host=127.0.0.1", f"port={port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return writer, f"udp://127.0.0.1:{port}"


def stop(writer: subprocess.Popen) -> None:
    """Kills the stream's whole session and reaps it."""
    try:
        os.killpg(writer.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    writer.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RtspCamera:
    """test/rtsp_server.py on a fixed loopback port, in its own session, killed by pid."""

    def __init__(self, path: str = "cam", fps: int = 30, size: str = "320x180",
                 auth: Optional[List[str]] = None) -> None:
        self.port = _free_port()
        self.uri = f"rtsp://127.0.0.1:{self.port}/{path}"
        self.args = ["/usr/bin/python3", RTSP_SERVER, "--port", str(self.port), "--path", path,
                     "--fps", str(fps), "--size", size]
        if auth:
            self.args += ["--user", auth[0], "--password", auth[1]]
        self.proc: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 30.0) -> "RtspCamera":
        """Starts the server and returns once it printed its ready line (RuntimeError if
        it does not within timeout)."""
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([self.proc.stdout], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self.proc.stdout.fileno(), 256) if ready else b""
            if not chunk:
                self.kill()
                raise RuntimeError(f"rtsp_server on port {self.port} not ready within {timeout} s")
            line += chunk
        if line.decode().split() != ["ready", self.uri]:
            self.kill()
            raise RuntimeError(f"rtsp_server on port {self.port} said {line!r}")
        return self

    def kill(self) -> None:
        """SIGKILL to its session, as a camera that loses power: no RTSP teardown."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc = None
