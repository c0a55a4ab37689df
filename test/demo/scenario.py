"""The demo scenario of `make run`: three instances driven through the reference server,
every message type of the protocol used once or more (a live RTSP camera with a server
outage among them), progress printed as it happens.

    scenario.py run  --server URL --config CFG --clips DIR --work DIR [--once]
    scenario.py stop --server URL --work DIR     (terminate every instance, kill leftovers)
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from typing import Dict, List

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import livecam  # noqa: E402
from refserver.client import RefClient, wait_until  # noqa: E402

INSTANCES = ["demo-1", "demo-2", "demo-3"]
BOLD, DIM, RED, GREEN, RESET = ("\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[0m") \
    if sys.stdout.isatty() else ("",) * 5


def say(text: str) -> None:
    print(f"{BOLD}==> {text}{RESET}", flush=True)


class Tail(threading.Thread):
    """Prints every message the instances send, as the server records it."""

    def __init__(self, client: RefClient) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.next: Dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for app_id in INSTANCES:
                try:
                    page = self.client.messages(app_id, self.next.get(app_id, 0))
                except Exception:
                    continue
                for e in page["messages"]:
                    print(f"{DIM}   [{app_id}] {describe(e['msg'])}{RESET}", flush=True)
                self.next[app_id] = page["next"]
            self.stop.wait(0.2)


def describe(m: dict) -> str:
    t = m.get("type")
    if t in ("processing_started", "file_done", "file_error"):
        name = m.get("current_file") or m.get("processed_file") or ""
        extra = f" ({m['error_reason']})" if t == "file_error" else ""
        return f"{t:18} stream {m['stream_id']} camera {m['camera_id']} file {m['file_id']} {name}{extra}"
    if t == "analysis_complete":
        return f"{t:18} stream {m['stream_id']} camera {m['camera_id']}: {m.get('processed_count')} files"
    if t == "stream_lost":
        retry = "reconnecting" if m.get("will_retry") else "giving up"
        return f"{t:18} stream {m['stream_id']} camera {m['camera_id']}: {m.get('reason')} ({retry})"
    if t == "stream_resumed":
        return f"{t:18} stream {m['stream_id']} camera {m['camera_id']}: back after {m.get('down_ms')} ms"
    if t == "log":
        return f"log {m.get('level')}: {m.get('message')}"[:160]
    keep = {k: v for k, v in m.items() if k not in ("type", "seq", "lines", "streams")}
    return f"{t:18} {json.dumps(keep)[:140]}"


def item(file_id: int, path: str, out: str) -> dict:
    return {"file_type": "file", "file_id": file_id, "file_path": path,
            "file_name": os.path.basename(path), "output_path": os.path.join(out, f"{file_id}.txt")}


EOS = {"file_type": "eos"}


def wait_event(c: RefClient, app_id: str, mtype: str, camera_id: int, timeout: float = 60) -> dict:
    return c.wait_message(app_id, lambda m: m["type"] == mtype and m.get("camera_id") == camera_id,
                          timeout=timeout, what=f"{mtype} of camera {camera_id}")


def check(cond: bool, what: str) -> None:
    if not cond:
        raise SystemExit(f"{RED}demo check failed: {what}{RESET}")


def run(args: argparse.Namespace) -> None:
    c = RefClient(args.server)
    clips = {n: os.path.join(args.clips, f"{n}.mp4") for n in ("a", "b", "c", "d", "e", "f")}
    out = lambda app, cam: os.path.join(args.work, "out", app, str(cam))  # noqa: E731
    tail = Tail(c)

    say(f"launching {len(INSTANCES)} instances (spec §2.2) with {args.config}")
    env = {"DS_LIVE_LOG_LEVEL": "warn"}
    for app_id in INSTANCES:
        rec = c.launch(app_id, args.config, env=env)
        print(f"   {app_id}: pid {rec['pid']}, launch log {rec['log_path']}")
    for app_id in INSTANCES:
        rec = c.wait_connected(app_id, timeout=60)
        ready = c.msgs(app_id, types="app_ready")[-1]
        print(f"   {app_id}: app_ready pid {ready['process_id']}, {ready['streams_count']} streams, "
              f"{ready['version']} → execute_ack confirmed ({rec['ws_status']})")
    tail.start()

    a = "demo-1"
    say(f"{a}: camera 101 (fileset) on stream 0, init_file + a batch of 2 files")
    r = c.start(a, stream_id=0, camera_id=101, camera_type="fileset", camera_path=args.clips,
                camera_name="lobby", output_dir=out(a, 101), init_file=item(1011, clips["a"], out(a, 101)))
    print(f"   analysis_started: {r['status']} — {r.get('message')}")
    check(r["status"] == "ok", "camera 101 started")
    c.push(a, 0, 101, [item(1012, clips["b"], out(a, 101)), item(1013, clips["c"], out(a, 101))])

    say(f"{a}: camera 102 on the same stream is queued behind 101 (camera FIFO)")
    r = c.start(a, stream_id=0, camera_id=102, camera_type="fileset", camera_path=args.clips,
                camera_name="parking", output_dir=out(a, 102), init_file=item(1021, clips["d"], out(a, 102)))
    print(f"   analysis_started: {r['status']} — {r.get('message')}")
    c.push(a, 0, 102, [item(1022, clips["e"], out(a, 102))])  # push to a queued camera

    say(f"{a}: analysis status at the three levels")
    whole = c.status(a)
    for s in whole["streams"]:
        cams = ", ".join(f"{x['camera_id']}:{x['status']}(done {x['files']['completed_count']}, "
                         f"queued {x['files']['queued_count']})" for x in s["cameras"])
        print(f"   stream {s['stream_id']}: {s['status']:7} {cams}")
    one = c.status(a, 0)
    print(f"   stream 0 only: {len(one['stream']['cameras'])} cameras")
    cam = c.status(a, 0, 102)
    print(f"   camera 102 only: {cam['camera']['status']}, queued files "
          f"{[q['file_id'] for q in cam['camera']['files']['queued']]}")
    check(cam["camera"]["status"] == "queued", "camera 102 queued")

    say(f"{a}: second batch for 101, then a late eos in its own push_file")
    c.push(a, 0, 101, [item(1014, clips["f"], out(a, 101))])
    wait_event(c, a, "file_done", 101)
    c.push(a, 0, 101, [EOS])
    done = wait_event(c, a, "analysis_complete", 101)
    check(done["processed_count"] == 4, "camera 101 processed 4 files")
    say(f"{a}: 101 is complete; 102 started by itself; ending it")
    c.push(a, 0, 102, [EOS])
    done = wait_event(c, a, "analysis_complete", 102)
    check(done["processed_count"] == 2, "camera 102 processed 2 files")

    b = "demo-2"
    say(f"{b}: a single-file camera (camera_type file) on stream 1")
    r = c.start(b, stream_id=1, camera_id=201, camera_type="file", camera_path=clips["a"],
                camera_name="clip", output_dir=out(b, 201), init_file=item(201, clips["a"], out(b, 201)))
    check(r["status"] == "ok", "camera 201 started")
    wait_event(c, b, "analysis_complete", 201)
    say(f"{b}: a file that does not exist is reported and skipped")
    r = c.start(b, stream_id=0, camera_id=202, camera_type="fileset", camera_path=args.clips,
                camera_name="broken", output_dir=out(b, 202),
                init_file=item(2021, os.path.join(args.clips, "missing.mp4"), out(b, 202)))
    c.push(b, 0, 202, [item(2022, clips["b"], out(b, 202)), EOS])
    done = wait_event(c, b, "analysis_complete", 202)
    check(done["processed_count"] == 1, "camera 202: 1 file processed, 1 failed")

    d = "demo-3"
    say(f"{d}: a live RTSP camera (videostream) on stream 0: an outage, the return, interrupt_analysis")
    cam = livecam.RtspCamera("lobby", size="640x360").start()  # the "camera"
    try:
        live = {"file_type": "videostream", "file_id": 301, "file_path": cam.uri,
                "file_name": "live camera", "output_path": os.path.join(out(d, 301), "301.txt")}
        r = c.start(d, stream_id=0, camera_id=301, camera_type="videostream", camera_path=cam.uri,
                    camera_name="live", output_dir=out(d, 301), init_file=live)
        check(r["status"] == "ok", "camera 301 started")
        live_state = lambda: (c.status(d, 0, 301)["camera"]["files"]["processing"] or [{}])[0].get("live")  # noqa: E731
        full_rate = lambda: (live_state() or {}).get("fps", 0) >= 25  # noqa: E731
        wait_until(full_rate, 20, "the live camera at its rate", interval=0.5)
        print(f"   live camera running: {live_state()}")
        mark = c.next_index(d)
        say(f"{d}: the RTSP server is killed (a camera that loses power), then started again")
        cam.kill()
        lost = c.wait_message(d, lambda m: m["type"] == "stream_lost", since=mark, what="stream_lost")
        print(f"   stream_lost: {lost['reason']!r}, will_retry {lost['will_retry']}; status {live_state()}")
        cam.start()
        back = c.wait_message(d, lambda m: m["type"] == "stream_resumed", since=mark, timeout=40,
                              what="stream_resumed")
        print(f"   stream_resumed after {back['down_ms']} ms, {back['attempts']} attempt(s)")
        wait_until(full_rate, 20, "the live camera back at its rate", interval=0.5)
        print(f"   live camera running again: {live_state()}")
        check(not [m for m in c.msgs(d, since=mark, types="file_error,analysis_complete")],
              "camera 301 went on through the outage")
        r = c.interrupt(d, 0, 301)
        print(f"   analysis_interrupted: {r['status']} — {r.get('message')}")
        check(r["status"] == "ok", "camera 301 interrupted")
    finally:
        cam.kill()

    say("metrics (query_metrics) and recent logs (query_logs)")
    for app_id in INSTANCES:
        m = c.metrics(app_id)
        gpu = (f"{m['gpu_percent']:.1f}%, vram {m['vram_mb']:.0f} MB" if m["gpu_percent"] is not None
               else f"n/a ({m.get('gpu_error')})")
        print(f"   {app_id}: cpu {m['cpu_percent']:.1f}%, ram {m['ram_mb']:.1f} MB, gpu {gpu}")
    lg = c.logs(a, lines=5, level="info")
    print(f"   {a} log file: {lg['log_path']}")
    for line in lg["lines"]:
        print(f"   {line['timestamp']} {line['level']:5} {line['message'][:100]}")
    wait_until(lambda: all(tail.next.get(x, 0) >= c.next_index(x) for x in INSTANCES), 5,
               "the event printer to catch up")
    tail.stop.set()

    if args.once:
        say("terminate_app on every instance")
        for app_id in INSTANCES:
            r = c.terminate(app_id)
            rec = c.wait_exit(app_id, timeout=30)
            print(f"   {app_id}: app_terminated {r['status']}, exit code {rec['exit_code']}")
            check(rec["exit_code"] == 0, f"{app_id} exited 0")
        print(f"{GREEN}demo finished: every message type exchanged, all checks passed{RESET}")
    else:
        print(f"{GREEN}demo scenario done: the instances stay alive and idle, ready for requests.{RESET}")
        print(f"   HTTP API: {args.server}/docs   (Ctrl-C stops everything)")


def stop(args: argparse.Namespace) -> None:
    """Terminate every instance gracefully, kill what does not go."""
    records: List[dict] = []
    path = os.path.join(args.work, "server", "instances.json")
    if os.path.exists(path):
        with open(path) as fh:
            records = json.load(fh)
    c = RefClient(args.server, timeout=5)
    for rec in records:
        try:
            c.terminate(rec["app_id"])
        except Exception:
            pass
    deadline = time.monotonic() + 8
    for rec in records:
        for pid in (rec.get("process_id"), rec.get("pid")):
            if not pid:
                continue
            while time.monotonic() < deadline and alive(pid):
                time.sleep(0.05)
            for kill in (lambda: os.killpg(pid, signal.SIGKILL), lambda: os.kill(pid, signal.SIGKILL)):
                try:
                    kill()
                except (ProcessLookupError, PermissionError):
                    pass


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["run", "stop"])
    ap.add_argument("--server", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--config")
    ap.add_argument("--clips")
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args()
    (run if args.command == "run" else stop)(args)


if __name__ == "__main__":
    main()
