"""A live camera for the demo and the tests: a real-time H.264/MPEG-TS stream that
gst-launch-1.0 sends to a local UDP port."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Tuple


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
