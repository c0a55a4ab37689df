"""test/rtsp_server.py run by the tests, in its own process."""
import os
import select
import signal
import subprocess
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
SERVER = os.path.join(ROOT, "test", "rtsp_server.py")
FPS = 30


class RtspServer:
    """test/rtsp_server.py in its own process; port 0 lets the system choose."""

    def __init__(self, port=0, path="cam", user=None, password=None, fps=FPS):
        args = ["/usr/bin/python3", SERVER, "--port", str(port), "--path", path,
                "--fps", str(fps), "--size", "320x180"]
        if user is not None:
            args += ["--user", user, "--password", password]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(0, left))
            if not r:
                self.kill()
                raise TimeoutError("rtsp_server did not get ready")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                raise RuntimeError("rtsp_server exited: " + self.proc.stderr.read().decode())
            line += chunk
        self.ready_at = time.monotonic()
        assert line.startswith(b"ready rtsp://127.0.0.1:"), line
        self.url = line.split()[1].decode()
        self.port = int(self.url.split(":")[2].split("/")[0])

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.proc.stderr.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.kill()


@pytest.fixture
def servers():
    """servers(**RtspServer args) → a started server; all stopped after the test."""
    started = []

    def start(**kw):
        s = RtspServer(**kw)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
