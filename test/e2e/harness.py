"""Processes and files the end-to-end tests start and make: the reference server, instances,
clips, configs. Everything started here is killed by pid (with its process tree)."""
from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
from typing import Dict, List, Optional

TEST_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TEST_DIR)
if TEST_DIR not in sys.path:
    sys.path.insert(0, TEST_DIR)

from refserver.client import RefClient, Timeout, wait_until  # noqa: E402,F401

PY = "/usr/bin/python3"
# `make build` puts them in bin/; the variables point the suite at other builds.
SUPERVISOR = os.environ.get("DS_E2E_SUPERVISOR", os.path.join(REPO, "bin", "ds-supervisor"))
ENGINE = os.environ.get("DS_E2E_ENGINE", os.path.join(REPO, "bin", "ds-gst-engine"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------- process trees

def children_of(pid: int) -> List[int]:
    """Direct children of pid, from /proc."""
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", encoding="utf-8", errors="replace") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def descendants(pid: int) -> List[int]:
    out, todo = [], [pid]
    while todo:
        for kid in children_of(todo.pop()):
            out.append(kid)
            todo.append(kid)
    return out


def _stat(pid: int) -> Optional[List[str]]:
    """The fields of /proc/pid/stat after the command name (state first), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2:].split()


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    fields = _stat(pid)
    return fields is not None and fields[0] != "Z"


def started(pid: int) -> Optional[int]:
    """pid's start time (clock ticks since boot), None when it is gone: tells a process
    from a later one that got its pid."""
    fields = _stat(pid)
    return int(fields[19]) if fields is not None else None


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return ""


def pids_naming(text: str) -> List[int]:
    """The live processes whose command line holds text (this one excepted)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid() and alive(int(entry)) \
                and text in cmdline(int(entry)):
            out.append(int(entry))
    return out


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal pid and every descendant (children first collected, then all signalled)."""
    for p in [pid] + descendants(pid):
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def engine_pids(supervisor_pid: int) -> List[int]:
    return [p for p in descendants(supervisor_pid) if "ds-gst-engine" in cmdline(p)]


# ---------------------------------------------------------------- media and configs

def gst(*pipeline: str) -> subprocess.Popen:
    return subprocess.Popen(["gst-launch-1.0", "-q", *pipeline],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_clips(directory: str) -> Dict[str, str]:
    """H.264/MP4 clips, 320x180 at 30 fps, plus bad inputs. Returns name → path."""
    os.makedirs(directory, exist_ok=True)
    specs = {f"c{i}": (30, ["smpte", "ball", "snow", "circular", "gamut", "bar"][i % 6])
             for i in range(6)}
    specs["long"] = (900, "ball")  # 30 s
    procs = []
    paths: Dict[str, str] = {}
    for name, (frames, pattern) in specs.items():
        path = os.path.join(directory, f"{name}.mp4")
        paths[name] = path
        procs.append(gst("videotestsrc", f"num-buffers={frames}", f"pattern={pattern}", "!",
                         "video/x-raw,format=I420,width=320,height=180,framerate=30/1", "!",
                         "x264enc", "speed-preset=ultrafast", "key-int-max=30", "!",
                         "h264parse", "!", "mp4mux", "!", "filesink", f"location={path}"))
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    paths["empty"] = os.path.join(directory, "empty.mp4")
    open(paths["empty"], "wb").close()
    paths["random"] = os.path.join(directory, "random.mp4")
    with open(paths["random"], "wb") as fh:
        fh.write(random.Random(7).randbytes(64 * 1024))
    paths["text"] = os.path.join(directory, "notes.txt")
    with open(paths["text"], "w") as fh:
        fh.write("not a video\n" * 100)
    paths["truncated"] = os.path.join(directory, "truncated.mp4")
    with open(paths["c0"], "rb") as src, open(paths["truncated"], "wb") as dst:
        data = src.read()
        dst.write(data[len(data) // 2:])  # moov is at the end; the head (ftyp, mdat) is cut
    paths["missing"] = os.path.join(directory, "does-not-exist.mp4")
    return paths


def write_config(path: str, slots: int) -> str:
    """A deepstream-app style config with `slots` enabled [sourceK] groups."""
    lines = ["[application]", "enable-perf-measurement=0", ""]
    for k in range(slots):
        lines += [f"[source{k}]", "enable=1", "type=3", "uri=file:///dev/null",
                  "num-sources=1", "gpu-id=0", ""]
    lines += ["[source9]", "enable=0", "type=3", "uri=file:///dev/null", "",
              "[streammux]", "gpu-id=0", f"batch-size={slots}", "width=320", "height=180", "",
              "[sink0]", "enable=1", "type=1", "sync=0", ""]
    with open(path, "w") as fh:
        fh.write("\n".join(lines))
    return path


# ---------------------------------------------------------------- the reference server

class Server:
    """The reference server as a real uvicorn process on a fixed port."""

    def __init__(self, data_dir: str, port: Optional[int] = None,
                 env: Optional[Dict[str, str]] = None, tls: Optional["Pki"] = None,
                 client_certs: bool = False) -> None:
        """With tls, uvicorn serves https/wss with tls's server certificate; with
        client_certs too, it requires a client certificate of tls's CA (mutual TLS), and
        the HTTP client presents one."""
        self.data_dir = data_dir
        self.port = port or free_port()
        self.env = env or {}
        self.tls = tls
        self.client_certs = client_certs
        self.proc: Optional[subprocess.Popen] = None
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.ws_url = f"{'wss' if tls else 'ws'}://127.0.0.1:{self.port}/ws"
        self.client = RefClient(self.url, verify=tls.ca if tls else True,
                                cert=(tls.client_cert, tls.client_key) if client_certs else None)
        self.starts = 0

    def start(self, timeout: float = 20.0, wait: bool = True) -> "Server":
        """Start uvicorn; with wait, return once the server answers (else call wait_ready)."""
        os.makedirs(self.data_dir, exist_ok=True)
        env = {**os.environ, "REFSERVER_DATA_DIR": self.data_dir,
               "REFSERVER_SUPERVISOR": SUPERVISOR, "REFSERVER_ENGINE": ENGINE, **self.env}
        log = open(os.path.join(self.data_dir, "server.log"), "ab")
        tls_args: List[str] = []
        if self.tls:
            tls_args = ["--ssl-certfile", self.tls.server_cert, "--ssl-keyfile", self.tls.server_key]
            if self.client_certs:
                tls_args += ["--ssl-ca-certs", self.tls.ca, "--ssl-cert-reqs", "2"]
        self.proc = subprocess.Popen(
            [PY, "-m", "uvicorn", "refserver.app:app", "--app-dir", TEST_DIR, "--host",
             "127.0.0.1", "--port", str(self.port), "--ws", "websockets",
             "--ws-max-size", str(64 << 20), "--log-level", "warning", *tls_args],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        log.close()
        self.starts += 1
        if wait:
            self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}; see "
                                   f"{self.data_dir}/server.log")
            try:
                self.client.health()
                return True
            except Exception:
                return False
        wait_until(up, timeout, "the reference server to answer")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)

    def stop(self) -> None:
        self.kill(signal.SIGKILL)
        self.client.close()


# ---------------------------------------------------------------- certificates

class Pki:
    """A throwaway CA made with openssl in directory, with a server certificate for
    127.0.0.1 and a client certificate: PEM file paths."""

    def __init__(self, directory: str, name: str = "test") -> None:
        os.makedirs(directory, exist_ok=True)
        self.dir = directory
        self.ca, self.ca_key = self._path(f"{name}-ca.pem"), self._path(f"{name}-ca.key")
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", self.ca_key, "-out", self.ca, "-days", "2", "-subj", f"/CN={name} CA")
        self.server_cert, self.server_key = self.issue(f"{name}-server", "127.0.0.1",
                                                        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                                        "extendedKeyUsage=serverAuth\n")
        self.client_cert, self.client_key = self.issue(f"{name}-client", "instance",
                                                        "extendedKeyUsage=clientAuth\n")

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def issue(self, name: str, cn: str, extensions: str):
        """A certificate named cn signed by the CA: (cert path, key path)."""
        cert, key, csr, ext = (self._path(name + s) for s in (".pem", ".key", ".csr", ".ext"))
        with open(ext, "w") as fh:
            fh.write(extensions)
        _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", key, "-out", csr, "-subj", f"/CN={cn}")
        _openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key,
                 "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key


def _openssl(*args: str) -> None:
    res = subprocess.run(["openssl", *args], capture_output=True, text=True)
    assert res.returncode == 0, f"openssl {' '.join(args)}: {res.stderr}"


def instance_env(root: str, **extra: str) -> Dict[str, str]:
    """Environment of an instance: everything under root, fast link timings."""
    env = {"DS_INSTANCE_ROOT": os.path.join(root, "inst"),
           "DS_LOG_ROOT": os.path.join(root, "logs"),
           "DS_HEARTBEAT_INTERVAL": "1s", "DS_HEARTBEAT_TIMEOUT": "1s",
           "DS_BACKOFF_MIN": "50ms", "DS_BACKOFF_MAX": "500ms"}
    env.update(extra)
    return env


def file_item(file_id: int, path: str, out_dir: str) -> Dict[str, object]:
    return {"file_type": "file", "file_id": file_id, "file_path": path,
            "file_name": os.path.basename(path),
            "output_path": os.path.join(out_dir, f"{file_id}.txt")}


EOS = {"file_type": "eos"}


def start_body(stream_id: int, camera_id: int, camera_type: str, out_dir: str,
               init: Optional[Dict[str, object]] = None, camera_path: str = "/videos") -> Dict[str, object]:
    body: Dict[str, object] = {"stream_id": stream_id, "camera_id": camera_id,
                               "camera_type": camera_type, "camera_path": camera_path,
                               "camera_name": f"camera-{camera_id}", "output_dir": out_dir}
    if init is not None:
        body["init_file"] = init
    return body


def read_output(path: str) -> List[List[int]]:
    """Per-file output lines `<camera_frame> <file_frame> <pts_ns>` as integer triples."""
    with open(path) as fh:
        return [[int(x) for x in line.split()] for line in fh if line.strip()]
