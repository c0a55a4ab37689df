"""Instances under supervisord, the second control path of spec §2.2 (5): Debian's
supervisor runs one program per app_id from docker/supervisord/gen-conf.py's config, the
reference server starts and stops them over XML-RPC (TCP, loopback) and the tests drive
them with supervisorctl (unix socket). supervisord runs as this module's child, on files
under pytest's temp dir, and is stopped by pid with everything it started."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time

import pytest

import harness as h
from harness import EOS, file_item, start_body
from refserver.supervisord import Supervisord

GEN = os.path.join(h.REPO, "docker", "supervisord", "gen-conf.py")
# Shorter than the template's default so the module runs quickly; the rules are the same.
STARTSECS = 2
STARTRETRIES = 3  # the template's default
IDS = ("sup-a", "sup-b", "sup-c")
BAD, DUP = "sup-bad", "sup-dup"


def report(line: str) -> None:
    print(f"\n[supervisord] {line}")


class Supd:
    """supervisord with the generated config, its control paths and its own log."""

    def __init__(self, run_dir: str, conf: str, server: h.Server) -> None:
        self.run_dir, self.conf, self.server = run_dir, conf, server
        self.rpc = Supervisord("unix://" + os.path.join(run_dir, "supervisor.sock"))
        self.proc: subprocess.Popen = None

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["supervisorctl", "-c", self.conf, *args], capture_output=True,
                              text=True, timeout=60)

    def log(self) -> str:
        with open(os.path.join(self.run_dir, "supervisord.log"), errors="replace") as fh:
            return fh.read()

    def exits(self, program: str) -> list:
        """Exit statuses supervisord logged for program, in order ('exited:' lines)."""
        return [int(x) for x in re.findall(
            rf"exited: {re.escape(program)} \(exit status (\d+);", self.log())]

    def info(self, app_id: str) -> dict:
        return self.rpc.info(app_id)

    def wait_state(self, app_id: str, state: str, timeout: float = 30.0) -> dict:
        return h.wait_until(lambda: (lambda i: i if i["statename"] == state else None)(
            self.info(app_id)), timeout, f"ds-{app_id} to be {state}")


@pytest.fixture(scope="module")
def supd(root, config, binaries):
    if not (shutil.which("supervisord") and shutil.which("supervisorctl")):
        pytest.fail("supervisord/supervisorctl missing: bash .ci/deps.sh installs Debian's supervisor")
    run_dir = os.path.join(root, "supervisord")
    os.makedirs(run_dir, exist_ok=True)
    conf = os.path.join(run_dir, "supervisord.conf")
    port = h.free_port()
    server = h.Server(os.path.join(root, "server-supervisord"), env={
        "REFSERVER_LAUNCH_MODE": "supervisord",
        "REFSERVER_SUPERVISORD_URL": f"http://ref:secret@127.0.0.1:{port}"})
    env = h.instance_env(root, DS_ENGINE=h.ENGINE, DS_ENGINE_RESTARTS="0", DS_RESUME="1")
    gen = [h.PY, GEN, "--config", config(3), "--ws-url", server.ws_url, "--command", h.SUPERVISOR,
           "--run-dir", run_dir, "--log-dir", run_dir, "--inet", f"127.0.0.1:{port}",
           "--inet-auth", "ref:secret", "--startsecs", str(STARTSECS),
           "--startretries", str(STARTRETRIES), "--out", conf]
    for k, v in env.items():
        gen += ["--env", f"{k}={v}"]
    missing = os.path.join(root, "configs", "does-not-exist.txt")
    subprocess.run(gen + [*IDS, f"{BAD}:{missing}", DUP], check=True, timeout=30)

    s = Supd(run_dir, conf, server)
    out = open(os.path.join(run_dir, "supervisord.out"), "ab")
    s.proc = subprocess.Popen(["supervisord", "-c", conf], cwd=run_dir, stdin=subprocess.DEVNULL,
                              stdout=out, stderr=out, start_new_session=True)
    out.close()

    def up():
        if s.proc.poll() is not None:
            raise RuntimeError(f"supervisord exited with {s.proc.returncode}: {s.log()[-2000:]}")
        try:
            return s.rpc._rpc().getState()["statename"] == "RUNNING"
        except OSError:
            return False
    try:
        server.start()
        h.wait_until(up, 20, "supervisord to answer on its unix socket")
        yield s
    finally:
        # supervisord stops its programs (TERM each, as `supervisorctl stop`) when it gets
        # TERM; whatever is left afterwards is killed by pid.
        left = h.descendants(s.proc.pid)
        s.proc.send_signal(signal.SIGTERM)
        try:
            s.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            h.kill_tree(s.proc.pid)
            s.proc.wait(timeout=10)
        for pid in left:
            if h.alive(pid):
                h.kill_tree(pid)
        server.stop()


@pytest.fixture(scope="module")
def running(supd, config):
    """The three programs started by the server over XML-RPC, handshaken and RUNNING."""
    c = supd.server.client
    for app_id in IDS:
        rec = c.launch(app_id, config(3))
        assert rec["command"] == ["supervisord", f"ds-{app_id}"] and rec["pid"], rec
    for app_id in IDS:
        c.wait_connected(app_id, timeout=30)
    for app_id in IDS:
        info = supd.wait_state(app_id, "RUNNING", timeout=STARTSECS + 20)
        # supervisord watches the supervisor itself: the re-exec that adds APP_ID=<id> to
        # the command line keeps the pid it started.
        assert info["pid"] == c.instance(app_id)["process_id"], info
    st = supd.ctl("status", *(f"ds-{i}" for i in IDS))
    report("supervisorctl status\n" + st.stdout.rstrip())
    assert st.returncode == 0, st
    rows = [line.split() for line in st.stdout.splitlines()]
    assert [(r[0], r[1]) for r in rows] == [(f"ds-{i}", "RUNNING") for i in IDS], st.stdout
    return {app_id: c.instance(app_id)["process_id"] for app_id in IDS}


def test_generator_through_make(tmp_path):
    """make supervisord-conf writes a config that Debian's supervisord reads as meant: the
    exit statuses that are not restarted, TERM with room for the engine's stop timeout,
    the environment and the command quoted so that they survive supervisord's parsing."""
    from supervisor.options import ServerOptions
    cfg_a, cfg_b = tmp_path / "a.txt", tmp_path / "with space.txt"
    h.write_config(str(cfg_a), 2)
    h.write_config(str(cfg_b), 3)
    out = tmp_path / "supervisord.conf"
    args = (f"--run-dir {tmp_path} --engine-stop-timeout 1m30s "
            "--env 'DS_LOG_ROOT=/var/log/50%,x y' --autostart")
    res = subprocess.run(["make", "-s", "-C", h.REPO, "supervisord-conf", f"APP_IDS=x y:{cfg_a}",
                          f"CONFIG={cfg_b}", "WS_URL=ws://127.0.0.1:8000/ws", f"OUT={out}",
                          f"CONF_ARGS={args}"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    opts = ServerOptions()
    opts.realize(args=["-c", str(out)])
    progs = {p.name: p for g in opts.process_group_configs for p in g.process_configs}
    assert sorted(progs) == ["ds-x", "ds-y"]
    for app_id, cfg in (("x", cfg_b), ("y", cfg_a)):
        p = progs[f"ds-{app_id}"]
        # supervisord splits command= this way before exec (Subprocess.get_execv_args).
        assert shlex.split(p.command) == ["deepstream-app", "-c", str(cfg)]
        assert p.environment == {"APP_ID": app_id, "DS_WS_URL": "ws://127.0.0.1:8000/ws",
                                 "DS_LOG_ROOT": "/var/log/50%,x y"}
        assert sorted(p.exitcodes) == [0, 2, 4, 5]
        assert p.autorestart.__name__ == "RestartWhenExitUnexpected" and p.autostart
        assert p.stopsignal == signal.SIGTERM and p.stopwaitsecs > 90
        assert not p.stopasgroup and p.killasgroup and p.startsecs >= 1
    assert opts.server_configs[0]["file"] == str(tmp_path / "supervisor.sock")
    # What cannot be written into supervisord's environment= is refused, not mangled.
    bad = subprocess.run([h.PY, GEN, "--config", str(cfg_a), "--env", 'K=say "hi"', "x"],
                         capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "double quote" in bad.stderr and not bad.stdout


def test_three_running_each_handshakes(supd, running):
    c = supd.server.client
    for app_id in IDS:
        rec = c.instance(app_id)
        assert rec["status"] == "running" and rec["ws_status"] == "connected"
        assert rec["connections"] == 1 and rec["process_state"] == "RUNNING"
        ready = c.msgs(app_id, types="app_ready")
        assert len(ready) == 1 and ready[0]["instance_id"] == app_id


def test_pgrep_finds_the_supervisor(supd, running):
    for app_id, pid in running.items():
        res = subprocess.run(["pgrep", "-f", f"APP_ID={app_id}( |$)"], capture_output=True,
                             text=True, timeout=10)
        assert [int(p) for p in res.stdout.split()] == [pid], (app_id, res)
        assert h.cmdline(pid).split()[:2] == [h.SUPERVISOR, f"APP_ID={app_id}"]
        engines = h.engine_pids(pid)
        assert len(engines) == 1 and "APP_ID" not in h.cmdline(engines[0])
        assert supd.server.client.watchdog(app_id, "pgrep")["pids"] == [pid]


def _assert_stopped_cleanly(supd, app_id, pid, engine, since):
    c = supd.server.client
    term = c.wait_message(app_id, lambda m: m["type"] == "app_terminated", since=since,
                          timeout=10, what="app_terminated")
    assert term["status"] == "ok"
    info = supd.info(app_id)
    assert info["statename"] == "STOPPED" and info["exitstatus"] == 0, info
    assert f"stopped: ds-{app_id} (exit status 0)" in supd.log()
    assert not h.alive(pid) and not h.alive(engine)
    rec = h.wait_until(lambda: (lambda r: r if r["exit_code"] is not None else None)(
        c.instance(app_id)), 5, "the server to see the exit")
    assert rec["exit_code"] == 0 and rec["process_state"] == "STOPPED"


def test_supervisorctl_stop(supd, running):
    app_id, pid = IDS[0], running[IDS[0]]
    engine, = h.engine_pids(pid)
    since = supd.server.client.next_index(app_id)
    t0 = time.monotonic()
    res = supd.ctl("stop", f"ds-{app_id}")
    report(f"supervisorctl stop ds-{app_id}: {res.stdout.strip()!r} in "
           f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert res.returncode == 0 and res.stdout.strip() == f"ds-{app_id}: stopped", res
    _assert_stopped_cleanly(supd, app_id, pid, engine, since)


def test_server_stop_and_start_over_xmlrpc(supd, running):
    c = supd.server.client
    app_id, pid = IDS[1], running[IDS[1]]
    engine, = h.engine_pids(pid)
    since = c.next_index(app_id)
    info = c.supervisord(app_id, "stop")
    assert info["statename"] == "STOPPED" and info["exitstatus"] == 0, info
    _assert_stopped_cleanly(supd, app_id, pid, engine, since)
    info = c.supervisord(app_id, "start")
    assert info["statename"] == "STARTING" and info["pid"] != pid
    rec = c.wait_connected(app_id, timeout=30)
    assert rec["process_id"] == info["pid"] and rec["connections"] == 2
    # DS_RESUME=1, but a clean stop leaves nothing to take over.
    assert rec["resumed"] is None and "resumed" not in c.msgs(app_id, types="app_ready")[-1]


def test_engine_killed_exit3_restarted_by_supervisord(supd, running, root, clips):
    """DS_ENGINE_RESTARTS=0: the engine's death mid-camera ends the supervisor with status
    3, which is not in exitcodes, so supervisord starts the program again; it handshakes
    and, with DS_RESUME=1, goes on with the camera."""
    c = supd.server.client
    app_id, pid = IDS[2], running[IDS[2]]
    engine, = h.engine_pids(pid)
    out = os.path.join(root, "out", app_id, "7")
    items = [file_item(700 + i, clips["long"], out) for i in range(1, 6)]
    assert c.start(app_id, **start_body(0, 7, "fileset", out, init=items[0]))["status"] == "ok"
    c.push(app_id, 0, 7, items[1:], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "processing_started" and m["file_id"] == 702,
                   timeout=60, what="file 702 started")
    since = c.next_index(app_id)
    t0 = time.monotonic()
    os.kill(engine, signal.SIGKILL)
    crash = c.wait_message(app_id, lambda m: m["type"] == "engine_crashed", since=since,
                           timeout=10, what="engine_crashed")
    assert crash["restarting"] is False and crash["signal"] == "SIGKILL"
    h.wait_until(lambda: supd.exits(f"ds-{app_id}") == [3], 10, "supervisord to log exit 3")
    ready = c.wait_message(app_id, lambda m: m["type"] == "app_ready" and m["process_id"] != pid,
                           since=since, timeout=30, what="app_ready of the restarted process")
    back = time.monotonic() - t0
    rec = c.wait_connected(app_id, timeout=10)
    assert rec["process_id"] == ready["process_id"] and rec["connections"] == 2
    info = supd.wait_state(app_id, "RUNNING", timeout=STARTSECS + 10)
    assert info["pid"] == ready["process_id"] and not h.alive(pid)
    assert len(h.engine_pids(info["pid"])) == 1
    assert ready["resumed"]["from_pid"] == pid and ready["resumed"]["cameras"] == 1, ready
    c.push(app_id, 0, 7, [EOS], ack_wait=0)
    done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 7,
                          timeout=120, what="camera 7 complete")
    ends = c.msgs(app_id, types="file_done,file_error")
    outcomes = {f["file_id"]: [m["type"] for m in ends if m.get("file_id") == f["file_id"]]
                for f in items}
    assert sorted(map(tuple, outcomes.values())).count(("file_error",)) == 1, outcomes
    assert all(len(v) == 1 for v in outcomes.values()), outcomes
    assert done["processed_count"] + done["failed_count"] == len(items), done
    report(f"engine kill -9 → exit 3 → restarted by supervisord, handshake again after "
           f"{back * 1000:.0f} ms, resumed {ready['resumed']}, camera complete: "
           f"{done['processed_count']} done, {done['failed_count']} failed")


def _assert_fatal(supd, app_id, status):
    """A start that fails within startsecs: retried STARTRETRIES times, then FATAL, each
    time with `status`, and not started again."""
    program = f"ds-{app_id}"
    res = supd.ctl("start", program)
    assert res.returncode != 0 and "ERROR" in res.stdout, res
    info = supd.wait_state(app_id, "FATAL", timeout=STARTRETRIES * (STARTRETRIES + 1) / 2 + 10)
    assert supd.exits(program) == [status] * (STARTRETRIES + 1), supd.log()[-3000:]
    assert f"gave up: {program} entered FATAL state" in supd.log()
    # supervisord decides about a program once per main-loop turn (1 s): three turns
    # later it is still FATAL and was never started again.
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        assert supd.info(app_id)["statename"] == "FATAL"
        time.sleep(0.2)
    assert len(supd.exits(program)) == STARTRETRIES + 1
    assert supd.ctl("status", program).stdout.split()[1] == "FATAL"
    with open(os.path.join(supd.run_dir, f"{program}.out"), errors="replace") as fh:
        return info, fh.read()


def test_bad_config_exit2_fatal(supd):
    info, out = _assert_fatal(supd, BAD, 2)
    assert "does-not-exist.txt" in out and "no such file" in out, out
    report(f"bad config: {STARTRETRIES + 1} × exit 2, then {info['statename']} "
           f"({info['spawnerr']})")


def test_already_running_exit5_fatal(supd, root, config):
    """Another supervisor holds the APP_ID (started the docker-exec way): status 5."""
    c = supd.server.client
    c.launch(DUP, config(3), launch=False)
    env = {**os.environ, **h.instance_env(root), "APP_ID": DUP, "DS_WS_URL": supd.server.ws_url,
           "DS_ENGINE": h.ENGINE}
    other = subprocess.Popen([h.SUPERVISOR, "-c", config(3)], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
    try:
        c.wait_connected(DUP, timeout=30)
        _, out = _assert_fatal(supd, DUP, 5)
        assert "already running" in out, out
        assert other.poll() is None  # the first one is untouched
    finally:
        h.kill_tree(other.pid)
        other.wait(timeout=10)


def test_server_refusals(supd, config):
    """What supervisord mode cannot do is refused with a clear status, nothing started."""
    c = supd.server.client
    with pytest.raises(RuntimeError, match=r"HTTP 404 .*ds-sup-none"):
        c.launch("sup-none", config(3))  # no such program in supervisord's config
    assert c.instance("sup-none")["status"] == "fatal"
    with pytest.raises(RuntimeError, match=r"HTTP 400 .*\[program\] section"):
        c.launch(IDS[0], config(3), env={"DS_LOG_LEVEL": "debug"})
    with pytest.raises(RuntimeError, match=r"HTTP 400 .*action is start\|stop"):
        c.supervisord(IDS[0], "restart")
    with pytest.raises(RuntimeError, match=r"HTTP 404 .*unknown instance"):
        c.supervisord("sup-nobody")
