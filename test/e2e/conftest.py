"""Fixtures of the end-to-end suite: one temp tree per session, generated clips, the
reference server, and a launcher that kills every instance it started."""
from __future__ import annotations

import itertools
import os
import subprocess

import pytest

import harness as h
import livecam


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("e2e"))


@pytest.fixture(scope="session", autouse=True)
def nothing_left_running(root):
    """When the session ends (servers stopped, every test's instances killed), no process
    it started is left: each names a file under root on its command line."""
    yield
    try:  # the last ones killed may take a moment to go
        h.wait_until(lambda: not h.pids_naming(root), 5, "the killed processes to go")
    except h.Timeout:
        left = {pid: h.cmdline(pid) for pid in h.pids_naming(root)}
        for pid in left:
            h.kill_tree(pid)
        pytest.fail(f"left running after the tests: {left}")


@pytest.fixture(scope="session")
def clips(root):
    return h.make_clips(os.path.join(root, "clips"))


@pytest.fixture(scope="session")
def binaries():
    for path in (h.SUPERVISOR, h.ENGINE):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: run `make build` first")
    return h.SUPERVISOR, h.ENGINE


@pytest.fixture(scope="session")
def config(root):
    """Returns a function slots → path of a config with that many slots."""
    made = {}

    def get(slots: int = 3) -> str:
        if slots not in made:
            os.makedirs(os.path.join(root, "configs"), exist_ok=True)
            made[slots] = h.write_config(os.path.join(root, "configs", f"gst-{slots}.txt"), slots)
        return made[slots]
    return get


@pytest.fixture(scope="session")
def server(root, binaries):
    srv = h.Server(os.path.join(root, "server")).start()
    yield srv
    srv.stop()


_ids = itertools.count(1)


class Launcher:
    """Launches instances through a server (spec §2.2) and kills what is left at the end."""

    def __init__(self, server: h.Server, root: str, config) -> None:
        self.server = server
        self.client = server.client
        self.root = root
        self.config = config
        self.launched = []  # (client, app_id)
        # (pid, start time) of every process to kill at the end, noted as soon as known: a
        # test may stop its own server before cleanup, which then cannot ask it.
        self.known = set()

    def new_id(self, name: str) -> str:
        return f"{name}-{next(_ids):03d}"

    def launch(self, name: str, slots: int = 3, env=None, wait: bool = True,
               server: h.Server = None, config_path: str = None, app_id: str = None) -> str:
        """Launch through srv; app_id: one from new_id the test needed beforehand."""
        srv = server or self.server
        app_id = app_id or self.new_id(name)
        self.launched.append((srv.client, app_id))
        srv.client.launch(app_id, config_path or self.config(slots),
                          env=h.instance_env(self.root, **(env or {})))
        self._note(srv.client, app_id)
        if wait:
            srv.client.wait_connected(app_id, timeout=30)
            self._note(srv.client, app_id)
        return app_id

    def own(self, pid: int) -> None:
        """Kill pid (and what it started) at the end of the test."""
        start = h.started(pid)
        if start is not None:
            self.known.add((pid, start))

    def _note(self, client, app_id: str) -> None:
        try:
            rec = client.instance(app_id)
        except Exception:
            return
        for pid in (rec.get("process_id"), rec.get("pid")):
            if pid:
                self.own(pid)

    def spawn_direct(self, name: str, slots: int = 3, env=None, server: h.Server = None,
                     wait: bool = True, ws_url: str = None):
        """Register an instance with the server and start the supervisor directly (no bash
        wrapper), so the test owns its exit status. Returns (app_id, Popen)."""
        srv = server or self.server
        app_id = self.new_id(name)
        self.launched.append((srv.client, app_id))
        srv.client.launch(app_id, self.config(slots), launch=False)
        full_env = {**os.environ, **h.instance_env(self.root, **(env or {})), "APP_ID": app_id,
                    "DS_WS_URL": ws_url or srv.ws_url, "DS_ENGINE": h.ENGINE}
        log = open(os.path.join(self.root, f"{app_id}.out"), "ab")
        proc = subprocess.Popen([h.SUPERVISOR, "-c", self.config(slots)], env=full_env,
                                stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                start_new_session=True)
        log.close()
        self.own(proc.pid)
        if wait:
            srv.client.wait_connected(app_id, timeout=30)
        return app_id, proc

    def out_dir(self, app_id: str, camera_id: int) -> str:
        return os.path.join(self.root, "out", app_id, str(camera_id))

    def cleanup(self) -> None:
        for client, app_id in self.launched:
            self._note(client, app_id)  # a relaunch may have new ones
        for pid, start in self.known:
            if h.started(pid) == start and h.alive(pid):
                h.kill_tree(pid)


@pytest.fixture
def launcher(server, root, config):
    lau = Launcher(server, root, config)
    yield lau
    lau.cleanup()


@pytest.fixture
def fresh_server(root, binaries, request):
    """A server of the test's own (for drills that kill or stall it)."""
    srv = h.Server(os.path.join(root, f"server-{request.node.name}"))
    yield srv
    srv.stop()


@pytest.fixture
def live_uri():
    """A live camera: a real-time H.264/MPEG-TS stream on a local UDP port
    (`udp://127.0.0.1:P`), running until the test ends."""
    writer, uri = livecam.start(320, 180)
    yield uri
    livecam.stop(writer)
