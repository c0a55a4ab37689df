"""A small synchronous client for the engine control protocol (docs/engine-protocol.md),
plus helpers to start ds-gst-engine and make test clips. Used by the tests and the bench."""
import json
import os
import select
import signal
import socket
import subprocess
import time

GST_LAUNCH = "gst-launch-1.0"


def make_clip(path, frames=60, width=640, height=360, fps=30, pattern="smpte"):
    """Writes an H.264/MP4 clip of `frames` frames with gst-launch."""
    subprocess.run(
        [GST_LAUNCH, "-q", "videotestsrc", f"num-buffers={frames}", f"pattern={pattern}", "!",
         f"video/x-raw,format=I420,width={width},height={height},framerate={fps}/1", "!",
         "x264enc", "speed-preset=ultrafast", "key-int-max=30", "!", "h264parse", "!",
         "mp4mux", "!", "filesink", f"location={path}"],
        check=True, timeout=60)
    return str(path)


def write_config(path, slots):
    """A deepstream-app style config with `slots` enabled sources."""
    lines = ["[application]", "enable-perf-measurement=0", ""]
    for i in range(slots):
        lines += [f"[source{i}]", "enable=1", "type=3", "uri=file:///dev/null",
                  "num-sources=1", "gpu-id=0", ""]
    lines += ["[streammux]", "gpu-id=0", f"batch-size={slots}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return str(path)


class ProtocolError(Exception):
    pass


class EngineClient:
    """One connection: requests get their reply; events are queued in order."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.sock.setblocking(False)
        self.buf = b""
        self.events = []
        self.next_id = 1
        self.timeout = timeout
        self.closed = False

    def close(self):
        self.sock.close()

    def _read_line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the engine")
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                continue
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                data = b""
            if not data:
                self.closed = True
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def read_message(self, timeout=None):
        return self._read_line(time.monotonic() + (timeout or self.timeout))

    def request(self, op, **fields):
        rid = self.next_id
        self.next_id += 1
        msg = dict(fields, id=rid, op=op)
        self.sock.sendall((json.dumps(msg) + "\n").encode())
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_line(deadline)
            if m is None:
                raise ProtocolError(f"connection closed awaiting reply to {op}")
            if "event" in m:
                self.events.append(m)
                continue
            if m.get("id") != rid:
                raise ProtocolError(f"reply {m} does not answer request {rid}")
            return m

    def ok(self, op, **fields):
        r = self.request(op, **fields)
        if not r.get("ok"):
            raise ProtocolError(f"{op} {fields} refused: {r}")
        return r

    def wait_event(self, pred, timeout=None):
        """Returns (and removes) the first queued or incoming event matching pred."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for i, e in enumerate(self.events):
                if pred(e):
                    return self.events.pop(i)
            m = self._read_line(deadline)
            if m is None:
                raise ProtocolError("connection closed awaiting an event")
            if "event" not in m:
                raise ProtocolError(f"unexpected reply {m}")
            self.events.append(m)

    def wait_file_end(self, slot, file_id, timeout=None):
        return self.wait_event(
            lambda e: e.get("event") in ("file_done", "file_error")
            and e.get("slot") == slot and e.get("file_id") == file_id, timeout)


class Engine:
    """A running ds-gst-engine process with its control socket."""

    def __init__(self, binary, config, workdir, env=None, args=None):
        stamp = f"{os.getpid()}-{time.monotonic_ns()}"
        self.socket_path = os.path.join(str(workdir), f"engine-{stamp}.sock")
        self.log_path = os.path.join(str(workdir), f"engine-{stamp}.log")
        full_env = dict(os.environ, DS_CONTROL_SOCKET=self.socket_path)
        full_env.update(env or {})
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([binary] + (args or ["-c", config]), env=full_env,
                                         stdout=subprocess.DEVNULL, stderr=log)

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def connect(self, timeout=20.0):
        """Connects once the socket exists and returns a client that has seen `ready`."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited with {self.proc.returncode}")
            try:
                c = EngineClient(self.socket_path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.005)
        ev = c.read_message(timeout=max(1.0, deadline - time.monotonic()))
        if ev != {"event": "ready"}:
            raise ProtocolError(f"expected ready, got {ev}")
        return c

    def wait(self, timeout=20.0):
        return self.proc.wait(timeout=timeout)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def read_output(path):
    """Per-file output lines as (camera_frame, file_frame, pts_ns) tuples."""
    with open(path) as f:
        return [tuple(int(x) for x in line.split()) for line in f]
