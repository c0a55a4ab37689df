"""A pipeline that stops moving frames, and input paths that block, end to end: the real
supervisor under the reference server, driving the real DeepStream adapter on the
stand-in (DS_ENGINE = ds-standin-app; `[standin] wedge-after-frames=N` wedges it) or
ds-gst-engine, with real clips, a real FIFO and a real FUSE mount that hangs
(test/blockfs.py). Timings are printed (pytest -s) for the report. DS_E2E_STALL_TIMEOUT
(seconds, default 3) and DS_E2E_HUNG_WATCH (seconds of status requests after a hung
path's file_error, default 2) stretch the drills to the shipped timeout and the whole
60 s hang."""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import sys
import time
import urllib.request
from datetime import datetime

import pytest

import harness as h
from harness import EOS, file_item, start_body

sys.path.insert(0, h.TEST_DIR)
from blockfs import BlockFS  # noqa: E402

STANDIN = os.environ.get("DS_E2E_STANDIN",
                         os.path.join(h.REPO, "build", "native", "deepstream", "standin",
                                      "ds-standin-app"))
STALL = int(os.environ.get("DS_E2E_STALL_TIMEOUT", "3"))  # DS_STALL_TIMEOUT, seconds
HUNG_WATCH = float(os.environ.get("DS_E2E_HUNG_WATCH", "2"))


def report(line: str) -> None:
    print(f"\n[stalls] {line}")


@pytest.fixture(scope="module")
def standin():
    if not os.access(STANDIN, os.X_OK):
        pytest.fail(f"{STANDIN} is missing: run `make build` first")
    return STANDIN


def standin_config(path: str, placeholder: str, slots: int, **standin) -> str:
    """A deepstream-app config as shipped (configs/deepstream), with [standin] keys."""
    lines = ["[application]", "enable-perf-measurement=0", "", "[tests]", "file-loop=0", "",
             "[source0]", "enable=1", "type=3", f"uri=file://{placeholder}",
             f"num-sources={slots}", "gpu-id=0", "",
             "[streammux]", "gpu-id=0", f"batch-size={slots}", "batched-push-timeout=33333",
             "drop-pipeline-eos=1", "sync-inputs=0", "",
             "[tracker]", "enable=1", "gpu-id=0", "tracking-id-reset-mode=1", "",
             "[sink0]", "enable=1", "type=1", "sync=0", ""]
    if standin:
        lines.append("[standin]")
        lines += [f"{k.replace('_', '-')}={v}" for k, v in standin.items()]
    with open(path, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


def launch_standin(launcher, standin, clips, name, slots, restarts, env=None, **keys):
    cfg = standin_config(os.path.join(launcher.root, f"{launcher.new_id(name)}.txt"), clips["c0"],
                         slots, **keys)
    return launcher.launch(name, config_path=cfg,
                           env={"DS_ENGINE": standin, "DS_STALL_TIMEOUT": f"{STALL}s",
                                "DS_ENGINE_RESTARTS": str(restarts),
                                "DS_LIVE_LOG_LEVEL": "panic", **(env or {})})


def at(c, app_id, mtype, pred=lambda m: True):
    """Arrival times at the server of the messages of mtype matching pred."""
    return [e["received_at"] for e in c.messages(app_id, types=mtype)["messages"] if pred(e["msg"])]


def wedge_times(launcher, app_id):
    """When the stand-in's sink wedged, per engine process, from the instance's log file
    (the engine's stderr lines, stamped as they arrive)."""
    out = []
    for path in sorted(glob.glob(os.path.join(launcher.root, "logs", f"instid_{app_id}-pid_*", "*.log"))):
        with open(path) as fh:
            for line in fh:
                rec = json.loads(line)
                if "standin sink: wedged after" in rec.get("message", ""):
                    out.append(datetime.fromisoformat(rec["time"]).timestamp())
    return sorted(out)


def camera(c, launcher, app_id, slot, cam, paths):
    out = launcher.out_dir(app_id, cam)
    items = [file_item(cam * 100 + i, p, out) for i, p in enumerate(paths, 1)]
    assert c.start(app_id, **start_body(slot, cam, "fileset", out, init=items[0]))["status"] == "ok"
    c.push(app_id, slot, cam, items[1:] + [EOS], ack_wait=0)
    return [i["file_id"] for i in items]


def ends(c, app_id):
    """file_id → the types of its terminal events."""
    out = {}
    for m in c.msgs(app_id, types="file_done,file_error"):
        out.setdefault(m["file_id"], []).append(m["type"])
    return out


def test_a_wedge_fails_the_file_in_flight_and_the_camera_goes_on(launcher, clips, standin):
    """The sink wedges 60 frames into the process: the file in flight fails as stalled;
    its camera's next file stalls too (the pipeline, not the file, is stuck), so the
    engine is restarted in place; the camera goes on and completes."""
    c = launcher.client
    port = h.free_port()
    app_id = launch_standin(launcher, standin, clips, "wedge", slots=2, restarts=2,
                            env={"DS_METRICS_ADDR": f"127.0.0.1:{port}"},
                            wedge_after_frames=60, block_timeout_ms=1000)
    ids = camera(c, launcher, app_id, 0, 1, [clips["c0"], clips["long"], clips["c1"], clips["c2"]])
    # analysis_status while the stall is handled (through the reference server, whose
    # models are the specification's: status "error" is one of its values).
    shown = []
    complete = lambda: c.msgs(app_id, types="analysis_complete")  # noqa: E731
    deadline = time.time() + 120
    while not complete() and time.time() < deadline:
        s0 = c.status(app_id, stream_id=0, timeout=5).get("stream", {})
        if s0.get("stalled"):
            shown.append((s0["status"], s0["stalled"]["action"], s0["stalled"]["file_id"]))
        time.sleep(0.1)
    assert complete(), "camera 1 never completed"
    assert ("error", "stopped", ids[1]) in shown and ("error", "restarting", ids[2]) in shown, shown
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        scrape = resp.read().decode()
    assert f'ds_analysis_stalls_total{{app_id="{app_id}",stream_id="0"}} 2' in scrape, scrape
    got = ends(c, app_id)
    assert got == {ids[0]: ["file_done"], ids[1]: ["file_error"], ids[2]: ["file_error"],
                   ids[3]: ["file_done"]}, got
    errs = {m["file_id"]: m["error_reason"] for m in c.msgs(app_id, types="file_error")}
    # The frame counts come with the liveness check, once a second: a stall is noticed
    # within a second after the timeout.
    assert re.fullmatch(rf"stalled: no new frame for ({STALL}|{STALL + 1})(\.\d)?s \(after \d+ frames\); "
                        r"the stream was stopped and goes on", errs[ids[1]]), errs
    assert errs[ids[2]].startswith("the engine's pipeline stalled while playing this file "
                                   "(engine restarted): stream 0 stalled again"), errs
    crash = c.msgs(app_id, types="engine_crashed")
    assert len(crash) == 1 and crash[0]["restarting"] is True, crash
    assert crash[0]["reason"].startswith("pipeline stalled: stream 0 stalled again"), crash
    done = c.msgs(app_id, types="analysis_complete")[0]
    assert done["processed_count"] == 2 and done["failed_count"] == 2, done
    wedged = wedge_times(launcher, app_id)
    t_err = at(c, app_id, "file_error", lambda m: m["file_id"] == ids[1])[0]
    t_back = at(c, app_id, "engine_restarted")[0]
    report(f"wedge → file_error of the file in flight {t_err - wedged[0]:.2f} s "
           f"(stall timeout {STALL} s); → engine_restarted {t_back - wedged[0]:.2f} s")
    assert STALL <= t_err - wedged[0] < STALL + 3.5
    assert len(c.msgs(app_id, types="app_ready")) == 1, "the link dropped"
    st = c.metrics(app_id)  # the instance still answers
    assert st["status"] == "ok"


def test_a_wedge_after_every_restart_spends_the_budget(launcher, clips, standin):
    """Every engine wedges 20 frames in: stall, stall again, restart; the second time
    there is no restart left and the instance exits 3."""
    c = launcher.client
    app_id = launch_standin(launcher, standin, clips, "wedge-always", slots=2, restarts=1,
                            wedge_after_frames=20, block_timeout_ms=500)
    pid = c.instance(app_id)["process_id"]
    camera(c, launcher, app_id, 0, 1, [clips["long"]] * 8)
    rec = c.wait_exit(app_id, timeout=120)
    assert rec["exit_code"] == 3, rec
    crashes = c.msgs(app_id, types="engine_crashed")
    assert [x["restarting"] for x in crashes] == [True, False], crashes
    assert all(x["reason"].startswith("pipeline stalled: ") for x in crashes), crashes
    assert len(c.msgs(app_id, types="engine_restarted")) == 1
    wedged = wedge_times(launcher, app_id)
    assert len(wedged) == 2, wedged
    t_back = at(c, app_id, "engine_restarted")[0]
    t_exit = at(c, app_id, "engine_crashed")[1]
    report(f"repeated wedge → engine_restarted {t_back - wedged[0]:.2f} s; the wedge of the "
           f"restarted engine → last engine_crashed (no restart left, exit 3) "
           f"{t_exit - wedged[1]:.2f} s")
    assert t_back - wedged[0] < 2 * STALL + 8
    assert not h.alive(pid) and not h.engine_pids(pid)


def test_a_single_slot_stall_loses_no_other_file(launcher, clips, standin, tmp_path):
    """Slot 0 reads its second file from a mount that hangs for 5 s in the middle of it:
    that slot stalls, is stopped and goes on; slots 1 and 2 play 40 files each meanwhile
    and lose none, and the engine is not restarted."""
    c = launcher.client
    src = tmp_path / "src"
    src.mkdir()
    for name in ("c3", "long"):
        shutil.copy(clips[name], src / f"{name}.mp4")
    size = os.path.getsize(src / "long.mp4")
    with BlockFS(str(src), str(tmp_path / "mnt"), stall_read={"long.mp4": (size // 2, 5)}) as fs:
        app_id = launch_standin(launcher, standin, clips, "one-slot", slots=3, restarts=2)
        cam0 = camera(c, launcher, app_id, 0, 1, [clips["c0"], fs.path("long.mp4"), clips["c1"]])
        others = {cam: camera(c, launcher, app_id, slot, cam, [clips["long"]] * 40)
                  for slot, cam in ((1, 2), (2, 3))}
        c.wait_message(app_id, lambda m: m["type"] == "file_error", timeout=60,
                       what="the stalled file's file_error")
        # The other slots' files in flight when slot 0's stall was handled: started and
        # not ended before its file_error in the server's journal.
        journal = c.messages(app_id)["messages"]
        cut = next(e["index"] for e in journal if e["msg"]["type"] == "file_error")
        started = {e["msg"]["file_id"] for e in journal if e["index"] < cut
                   and e["msg"]["type"] == "processing_started" and e["msg"]["stream_id"] != 0}
        ended = {e["msg"]["file_id"] for e in journal if e["index"] < cut
                 and e["msg"]["type"] in ("file_done", "file_error")}
        in_flight = sorted(started - ended)
        assert len(in_flight) == 2, (in_flight, journal[-5:])
        for cam in (1, 2, 3):
            c.wait_message(app_id, lambda m, cam=cam: m["type"] == "analysis_complete"
                           and m["camera_id"] == cam, timeout=180, what=f"camera {cam} complete")
    got = ends(c, app_id)
    assert got[cam0[1]] == ["file_error"], got
    assert got[cam0[0]] == got[cam0[2]] == ["file_done"], got
    lost = [f for ids in others.values() for f in ids if got.get(f) != ["file_done"]]
    assert not lost, (lost, got)
    err = [m for m in c.msgs(app_id, types="file_error")][0]
    assert err["error_reason"].startswith("stalled: no new frame for"), err
    assert not c.msgs(app_id, types="engine_crashed")
    assert all(got[f] == ["file_done"] for f in in_flight), got
    report(f"single-slot stall: the other slots' files in flight at the stall {in_flight}: "
           f"{[got[f][0] for f in in_flight]}; files of theirs lost: {len(lost)} of "
           f"{sum(len(v) for v in others.values())}")


def timed_status(c, app_id, until, stop_at):
    """analysis_status requests back to back until until(); returns their reply times."""
    took = []
    while not until() and time.time() < stop_at:
        t0 = time.monotonic()
        assert "streams" in c.status(app_id, timeout=5)
        took.append(time.monotonic() - t0)
        time.sleep(0.02)
    return took


@pytest.mark.parametrize("kind", ["fifo", "hung"])
def test_input_paths_that_block_cost_one_file(launcher, clips, tmp_path, kind):
    """A FIFO, and a file whose stat() hangs for 60 s on a FUSE mount: file_error (at
    once / after the 5 s check), the camera goes on, slot 1 plays on, and status requests
    sent meanwhile are answered at once."""
    c = launcher.client
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(clips["c0"], src / "cam.mp4")
    with BlockFS(str(src), str(tmp_path / "mnt"), block={"cam.mp4": 60}) as fs:
        bad = fs.path("cam.mp4")
        if kind == "fifo":
            bad = str(tmp_path / "cam.mp4")
            os.mkfifo(bad)
        app_id = launcher.launch(f"path-{kind}", slots=2, env={"DS_LIVE_LOG_LEVEL": "panic"})
        others = camera(c, launcher, app_id, 1, 2, [clips["long"]] * 2)
        t0 = time.time()
        ids = camera(c, launcher, app_id, 0, 1, [bad, clips["c1"]])
        failed = lambda: bool(c.msgs(app_id, types="file_error"))  # noqa: E731
        took = timed_status(c, app_id, failed, t0 + 20)
        err = c.wait_message(app_id, lambda m: m["type"] == "file_error", timeout=10)
        t_err = at(c, app_id, "file_error")[0] - t0
        # ... and a while after, with the check still stuck in the kernel.
        took += timed_status(c, app_id, lambda: False, time.time() + HUNG_WATCH)
        c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 1,
                       timeout=30, what="camera 1 complete")
        c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == 2,
                       timeout=60, what="camera 2 complete")
    report(f"{kind}: file_error after {t_err:.2f} s; {len(took)} status requests meanwhile, "
           f"longest reply {max(took) * 1000:.0f} ms")
    if kind == "fifo":
        assert err["error_reason"] == f"not a regular file: {bad}", err
        assert t_err < 1.5
    else:
        assert err["error_reason"] == f"path did not answer within 5s: {bad}", err
        assert 5 <= t_err < 7
    assert err["file_id"] == ids[0]
    got = ends(c, app_id)
    assert got[ids[1]] == ["file_done"] and all(got[f] == ["file_done"] for f in others), got
    assert max(took) < 0.5, max(took)
    assert not c.msgs(app_id, types="engine_crashed")
