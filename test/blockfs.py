#!/usr/bin/python3
"""A FUSE file system for the tests whose paths can hang, as a network mount that stops
answering does.

    /usr/bin/python3 test/blockfs.py --src DIR --mount MNT
        [--block NAME=SECONDS ...] [--stall-read NAME=OFFSET:SECONDS ...]

Shows the regular files of DIR, read-only, at MNT. `--block NAME=S`: every getattr of NAME
(stat, and the lookup before open) waits S seconds before it answers, so the caller waits
in the kernel. `--stall-read NAME=OFFSET:S`: the first read of NAME that reaches OFFSET
waits S seconds (a mount that hangs in the middle of a file), later reads do not. A line
`release` on stdin ends every wait at once and turns the waits off. Prints `ready MNT` on
stdout once mounted. SIGTERM unmounts and exits (after the waits in progress end: kill
it with SIGKILL to end them at once; the kernel then fails the waiting calls).

Needs Debian's python3-fusepy (imported as `fusepy`), libfuse2 and /dev/fuse (root).

As a module: `BlockFS(src, mount, block=..., stall_read=...)` runs the script in its own
process and `close()` stops it and unmounts, whatever state it is in.
"""
from __future__ import annotations

import argparse
import errno
import os
import select
import signal
import stat
import subprocess
import sys
import threading
import time

HERE = os.path.abspath(__file__)


def _serve(args: argparse.Namespace) -> None:
    import fusepy  # Debian's python3-fusepy

    block = {}
    for item in args.block:
        name, secs = item.split("=", 1)
        block["/" + name] = float(secs)
    stall = {}
    for item in args.stall_read:
        name, rest = item.split("=", 1)
        off, secs = rest.split(":", 1)
        stall["/" + name] = [int(off), float(secs)]
    released = threading.Event()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip() == "release":
                released.set()
                return

    threading.Thread(target=read_stdin, daemon=True).start()

    class FS(fusepy.Operations):
        def _real(self, path: str) -> str:
            name = path.lstrip("/")
            if "/" in name:
                raise fusepy.FuseOSError(errno.ENOENT)
            return os.path.join(args.src, name)

        def init(self, path):
            print("ready", args.mount, flush=True)

        def getattr(self, path, fh=None):
            if path == "/":
                return dict(st_mode=stat.S_IFDIR | 0o755, st_nlink=2)
            if path in block and not released.is_set():
                released.wait(block[path])
            try:
                st = os.stat(self._real(path))
            except OSError as e:
                raise fusepy.FuseOSError(e.errno)
            if not stat.S_ISREG(st.st_mode):
                raise fusepy.FuseOSError(errno.ENOENT)
            return dict(st_mode=stat.S_IFREG | 0o444, st_nlink=1, st_size=st.st_size,
                        st_mtime=st.st_mtime, st_atime=st.st_atime, st_ctime=st.st_ctime)

        def readdir(self, path, fh):
            return [".", ".."] + sorted(
                n for n in os.listdir(args.src) if os.path.isfile(os.path.join(args.src, n)))

        def open(self, path, flags):
            return os.open(self._real(path), os.O_RDONLY)

        def read(self, path, size, offset, fh):
            s = stall.get(path)
            if s is not None and offset + size > s[0] and s[1] > 0 and not released.is_set():
                secs, s[1] = s[1], 0
                released.wait(secs)
            return os.pread(fh, size, offset)

        def release(self, path, fh):
            os.close(fh)
            return 0

    fusepy.FUSE(FS(), args.mount, foreground=True, ro=True, nothreads=False)


class BlockFS:
    """test/blockfs.py in its own process, mounted at `mount`; see the module comment."""

    def __init__(self, src: str, mount: str, block: dict | None = None,
                 stall_read: dict | None = None, timeout: float = 20.0):
        os.makedirs(mount, exist_ok=True)
        self.mount = mount
        argv = ["/usr/bin/python3", HERE, "--src", src, "--mount", mount]
        for name, secs in (block or {}).items():
            argv += ["--block", f"{name}={secs}"]
        for name, (off, secs) in (stall_read or {}).items():
            argv += ["--stall-read", f"{name}={off}:{secs}"]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.proc.stdout], [], [], max(0.0, left))
            if not r:
                self.close()
                raise TimeoutError("blockfs did not mount")
            chunk = os.read(self.proc.stdout.fileno(), 1)
            if not chunk:
                err = self.proc.stderr.read().decode(errors="replace")
                self.close()
                raise RuntimeError("blockfs exited: " + err)
            line += chunk
        assert line.split()[0] == b"ready", line

    def path(self, name: str) -> str:
        return os.path.join(self.mount, name)

    def release(self) -> None:
        """Ends every wait at once; no path waits from now on."""
        if self.proc.poll() is None:
            self.proc.stdin.write(b"release\n")
            self.proc.stdin.flush()

    def close(self) -> None:
        """Stops the file system (callers still waiting in the kernel get an error) and
        unmounts it. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=20)
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()
        # The kernel keeps the dead mount until it is unmounted; lazily if still busy.
        subprocess.run(["fusermount", "-u", "-z", self.mount], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)

    def __enter__(self) -> "BlockFS":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--src", required=True)
    ap.add_argument("--mount", required=True)
    ap.add_argument("--block", action="append", default=[], metavar="NAME=SECONDS")
    ap.add_argument("--stall-read", action="append", default=[], metavar="NAME=OFFSET:SECONDS")
    _serve(ap.parse_args())


if __name__ == "__main__":
    main()
