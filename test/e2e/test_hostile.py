"""A matrix of malformed and hostile messages: each gets a specific error reply (reply type,
status error, error_reason or error_code), the instance stays healthy (answers status) and
a camera running on another slot is undisturbed."""
from __future__ import annotations

import base64
import json
import os
import re

import pytest

import harness as h
from conftest import Launcher
from harness import EOS, file_item, start_body

WITNESS, CAM, DONE = 700, 701, 702  # running on slot 1; running on slot 0; completed on slot 2


@pytest.fixture(scope="module")
def hostile(server, root, config, clips):
    lau = Launcher(server, root, config)
    c = lau.client
    app_id = lau.launch("hostile")
    ow, oc, od = (lau.out_dir(app_id, x) for x in (WITNESS, CAM, DONE))
    assert c.start(app_id, **start_body(1, WITNESS, "fileset", ow,
                                        init=file_item(7000, clips["c0"], ow)))["status"] == "ok"
    assert c.start(app_id, **start_body(0, CAM, "fileset", oc))["status"] == "ok"
    assert c.start(app_id, **start_body(2, DONE, "file", od,
                                        init=file_item(DONE, clips["c1"], od)))["status"] == "ok"
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == DONE)
    c.wait_message(app_id, lambda m: m["type"] == "file_done" and m["file_id"] == 7000)
    yield lau, app_id
    lau.cleanup()


def start(**over):
    msg = {"type": "start_analysis", "stream_id": 0, "camera_id": 7100, "camera_type": "fileset",
           "camera_path": "/videos", "camera_name": "x", "output_dir": "/tmp/hostile-out"}
    msg.update(over)
    return {k: v for k, v in msg.items() if v is not DROP}


def push(files, **over):
    msg = {"type": "push_file", "stream_id": 0, "camera_id": CAM, "files": files}
    msg.update(over)
    return {k: v for k, v in msg.items() if v is not DROP}


DROP = object()
F = {"file_type": "file", "file_id": 1, "file_path": "/videos/a.mp4", "file_name": "a.mp4"}
ERR = "error"

# (name, frame, reply type, error_code for `error` replies or None, exact error_reason or None)
CASES = [
    ("bad_json", "{not json", ERR, "BAD_JSON", None),
    ("empty_frame", "", ERR, "BAD_JSON", None),
    ("truncated_json", '{"type":"start_analysis","request_id":"x"', ERR, "BAD_JSON", None),
    ("array", "[1,2,3]", ERR, "BAD_MESSAGE", "frame is not a JSON object"),
    ("number", "42", ERR, "BAD_MESSAGE", "frame is not a JSON object"),
    ("string", '"hello"', ERR, "BAD_MESSAGE", "frame is not a JSON object"),
    ("null", "null", ERR, "BAD_MESSAGE", "frame is not a JSON object"),
    ("no_type", {"request_id": "r"}, ERR, "BAD_MESSAGE", 'missing field "type"'),
    ("type_number", {"type": 7}, ERR, "BAD_MESSAGE", None),
    ("type_null", {"type": None}, ERR, "BAD_MESSAGE", None),
    ("unknown_type", {"type": "format_disk"}, ERR, "UNKNOWN_TYPE", 'unknown message type "format_disk"'),
    ("app_type_echoed", {"type": "app_ready"}, ERR, "UNKNOWN_TYPE", None),
    ("binary_garbage", b"\xff\xfe\x00\x01garbage", ERR, "BAD_JSON", None),
    ("big_10mb_garbage", "x" * (10 << 20), ERR, "BAD_JSON", None),
    # start_analysis
    ("start_no_stream", start(stream_id=DROP), "analysis_started", None, 'field "stream_id": missing'),
    ("start_stream_string", start(stream_id="0"), "analysis_started", None,
     'field "stream_id": expected an integer, got a string "0"'),
    ("start_stream_negative", start(stream_id=-1), "analysis_started", None, 'field "stream_id": -1 is negative'),
    ("start_stream_out_of_range", start(stream_id=3), "analysis_started", None,
     'field "stream_id": 3 out of range (this instance has 3 streams: 0..2)'),
    ("start_stream_fraction", start(stream_id=1.5), "analysis_started", None, None),
    ("start_stream_bool", start(stream_id=True), "analysis_started", None, None),
    ("start_no_camera", start(camera_id=DROP), "analysis_started", None, 'field "camera_id": missing'),
    ("start_camera_negative", start(camera_id=-5), "analysis_started", None, 'field "camera_id": -5 is negative'),
    ("start_camera_huge", start(camera_id=2 ** 70), "analysis_started", None, None),
    ("start_camera_string", start(camera_id="abc"), "analysis_started", None, None),
    ("start_bad_camera_type", start(camera_type="folder"), "analysis_started", None, None),
    ("start_no_camera_type", start(camera_type=DROP), "analysis_started", None, 'field "camera_type": missing'),
    ("start_relative_output", start(output_dir="out"), "analysis_started", None, None),
    ("start_output_under_file", start(output_dir="/etc/hostname/out"), "analysis_started", None, None),
    ("start_no_request_id", start(request_id=DROP), "analysis_started", None, 'field "request_id": missing'),
    ("start_init_not_object", start(init_file="a.mp4"), "analysis_started", None, None),
    ("start_init_negative_id", start(init_file={**F, "file_id": -3}), "analysis_started", None, None),
    ("start_init_relative_path", start(init_file={**F, "file_path": "a.mp4"}), "analysis_started", None, None),
    ("start_file_without_init", start(camera_type="file"), "analysis_started", None,
     'field "init_file": missing (required for camera_type "file")'),
    ("start_duplicate_same_slot", start(camera_id=CAM), "analysis_started", None,
     f"camera {CAM} is already running on stream 0"),
    ("start_duplicate_other_slot", start(camera_id=CAM, stream_id=2), "analysis_started", None,
     f"camera {CAM} is already running on stream 0"),
    # push_file
    ("push_unknown_camera", push([F], camera_id=9999), "push_ack", None,
     "camera 9999 has no running or queued analysis on stream 0"),
    ("push_wrong_slot", push([F], stream_id=2), "push_ack", None, f"camera {CAM} is on stream 0, not on stream 2"),
    ("push_finished_camera", push([F], stream_id=2, camera_id=DONE), "push_ack", None,
     f"re:camera {DONE} on stream 2 has already (completed|finished)"),
    ("push_stream_out_of_range", push([F], stream_id=9), "push_ack", None, None),
    ("push_files_object", push({"a": 1}), "push_ack", None, 'field "files": expected an array, got an object'),
    ("push_files_empty", push([]), "push_ack", None, None),
    ("push_item_no_id", push([{k: v for k, v in F.items() if k != "file_id"}]), "push_ack", None,
     'field "files[0].file_id": missing'),
    ("push_item_bad_type", push([{**F, "file_type": "folder"}]), "push_ack", None, None),
    ("push_count_mismatch", push([F], files_count=5), "push_ack", None, None),
    ("push_eos_not_last", push([EOS, F]), "push_ack", None, None),
    ("push_duplicate_file_id", push([F, F]), "push_ack", None, None),
    ("push_100k_files", push([{**F, "file_id": i, "file_name": f"{i}.mp4"} for i in range(100000)]),
     "push_ack", None, None),
    # interrupt_analysis
    ("interrupt_unknown_camera", {"type": "interrupt_analysis", "stream_id": 0, "camera_id": 9999},
     "analysis_interrupted", None, "camera 9999 not found on stream 0"),
    ("interrupt_idle_stream", {"type": "interrupt_analysis", "stream_id": 2, "camera_id": CAM},
     "analysis_interrupted", None, "stream 2 has no active analysis"),
    ("interrupt_no_camera", {"type": "interrupt_analysis", "stream_id": 0}, "analysis_interrupted", None,
     'field "camera_id": missing'),
    # query_analysis_status
    ("status_stream_out_of_range", {"type": "query_analysis_status", "stream_id": 3}, "analysis_status",
     None, None),
    ("status_camera_without_stream", {"type": "query_analysis_status", "camera_id": CAM},
     "analysis_status", None, None),
    ("status_camera_elsewhere", {"type": "query_analysis_status", "stream_id": 1, "camera_id": CAM},
     "analysis_status", None, f"camera {CAM} not found on stream 1 (it is on stream 0)"),
    # query_logs, terminate_app
    ("logs_zero_lines", {"type": "query_logs", "lines": 0}, "logs", None, None),
    ("logs_bad_level", {"type": "query_logs", "level": "loud"}, "logs", None, None),
    ("terminate_bad_mode", {"type": "terminate_app", "mode": "now"}, "app_terminated", None, None),
]


@pytest.mark.parametrize("name,frame,rtype,code,reason", CASES, ids=[c[0] for c in CASES])
def test_hostile_message(hostile, name, frame, rtype, code, reason):
    lau, app_id = hostile
    c = lau.client
    rid = f"h-{name}"
    if isinstance(frame, dict):
        if "request_id" not in frame and name != "start_no_request_id":
            frame = {**frame, "request_id": rid}
        elif frame.get("request_id") == "r":
            frame = {**frame, "request_id": rid}
    since = c.next_index(app_id)
    if isinstance(frame, bytes):
        c.send_raw(app_id, binary_b64=base64.b64encode(frame).decode())
    else:
        c.send_raw(app_id, text=frame if isinstance(frame, str) else json.dumps(frame))
    expected_rid = frame.get("request_id") if isinstance(frame, dict) else None
    reply = c.wait_message(app_id, lambda m: m.get("type") in ("error", rtype) and m.get("type") != "log"
                           and m.get("request_id") == expected_rid, since=since, timeout=30,
                           what=f"the reply to {name}")
    assert reply["type"] == rtype, reply
    assert reply["status"] == "error", reply
    assert isinstance(reply.get("error_reason"), str) and reply["error_reason"], reply
    if code:
        assert reply["error_code"] == code, reply
    if reason and reason.startswith("re:"):
        assert re.fullmatch(reason[3:], reply["error_reason"]), reply
    elif reason:
        assert reply["error_reason"] == reason, reply
    if isinstance(frame, dict) and rtype in ("analysis_started", "push_ack", "analysis_interrupted"):
        for key in ("stream_id", "camera_id"):
            if isinstance(frame.get(key), int) and not isinstance(frame.get(key), bool) \
                    and 0 <= frame[key] < 2 ** 63:
                assert reply[key] == frame[key], (key, reply)
    # still healthy, nothing changed
    st = c.status(app_id)
    assert [s["status"] for s in st["streams"]] == ["running", "running", "idle"]
    assert [cam["camera_id"] for cam in st["streams"][0]["cameras"]] == [CAM]
    assert st["streams"][0]["cameras"][0]["files"]["queued_count"] == 0
    assert [cam["camera_id"] for cam in st["streams"][1]["cameras"]] == [WITNESS]


BAD_FILES = ["missing", "empty", "random", "text", "truncated"]


def test_bad_files_reported_and_skipped(hostile, clips):
    """Missing, zero-byte, corrupt, non-video and head-truncated files: a file_error each,
    the camera goes on with its next file."""
    lau, app_id = hostile
    c = lau.client
    out = lau.out_dir(app_id, CAM)
    items = [file_item(7010 + i, clips[k], out) for i, k in enumerate(BAD_FILES)]
    good = file_item(7020, clips["c2"], out)
    since = c.next_index(app_id)
    assert c.push(app_id, 0, CAM, items + [good], ack_wait=0.3)["push_ack"] is None
    c.wait_message(app_id, lambda m: m["type"] == "file_done" and m["file_id"] == 7020, since=since)
    evs = [m for m in c.msgs(app_id, since, types="file_error,file_done,processing_started")
           if m["camera_id"] == CAM]
    errors = {m["file_id"]: m for m in evs if m["type"] == "file_error"}
    assert sorted(errors) == [i["file_id"] for i in items]
    for i in items:
        e = errors[i["file_id"]]
        assert e["stream_id"] == 0 and e["error_reason"]
    assert [m["file_id"] for m in evs if m["type"] == "file_done"] == [7020]
    assert len(h.read_output(good["output_path"])) == 30
    st = c.status(app_id, 0, CAM)["camera"]
    assert st["files"]["completed_count"] == len(items) + 1


def test_oversized_frame_then_healthy(hostile):
    """A 40 MB frame (over the instance's read limit) ends that connection; the instance
    reconnects and answers."""
    lau, app_id = hostile
    c = lau.client
    n_ready = len(c.msgs(app_id, types="app_ready"))
    try:
        c.send_raw(app_id, text='{"type":"query_metrics","pad":"' + "y" * (40 << 20) + '"}')
    except RuntimeError as exc:  # the instance may close the link before the frame is all sent
        assert "HTTP 409" in str(exc)
    h.wait_until(lambda: len(c.msgs(app_id, types="app_ready")) > n_ready, 20, "a reconnect")
    c.wait_connected(app_id)
    assert c.status(app_id)["streams"][1]["cameras"][0]["camera_id"] == WITNESS


def test_witness_undisturbed(hostile, clips):
    """The camera on slot 1 lived through everything above and completes normally with
    its frame index continuous."""
    lau, app_id = hostile
    c = lau.client
    out = lau.out_dir(app_id, WITNESS)
    nxt = file_item(7001, clips["c3"], out)
    c.push(app_id, 1, WITNESS, [nxt, EOS], ack_wait=0)
    done = c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m["camera_id"] == WITNESS)
    assert done["processed_count"] == 2
    frames = [r[0] for r in h.read_output(os.path.join(out, "7000.txt")) + h.read_output(nxt["output_path"])]
    assert frames == list(range(60))
    assert c.instance(app_id)["process_id"] == c.msgs(app_id, types="app_ready")[0]["process_id"]
