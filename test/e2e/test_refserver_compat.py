"""The reference server on both pydantic majors: outside refserver/compat.py no name that
pydantic 2 removed or deprecates, nor FastAPI's on_event, is used (checked on the source, so
it holds whichever pydantic is installed), and what compat.py offers behaves as the server
needs on the installed one (Debian 12: pydantic 1.10; FastAPI >= 0.100: pydantic 2)."""
from __future__ import annotations

import ast
import glob
import os

import pydantic
import pytest
from fastapi.testclient import TestClient

import harness as h
from refserver import compat
from refserver import models as m

REFSERVER = os.path.join(h.TEST_DIR, "refserver")

# pydantic 1 API that pydantic 2 removed (regex=, Config.fields …) or deprecates, and
# FastAPI's deprecated on_event.
FORBIDDEN_ATTRS = {"dict", "json", "parse_obj", "parse_raw", "parse_file", "from_orm", "construct",
                   "copy", "schema", "schema_json", "update_forward_refs", "__fields__",
                   "__fields_set__", "on_event"}
FORBIDDEN_IMPORTS = {"Extra", "validator", "root_validator", "BaseSettings", "parse_obj_as",
                     "ConstrainedStr", "ConstrainedInt"}
FORBIDDEN_KEYWORDS = {"regex", "const", "min_items", "max_items", "allow_mutation"}
# Receivers whose .json() is not pydantic's: httpx responses in client.py.
NOT_PYDANTIC = {"resp"}


def violations(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    out = []
    for node in ast.walk(tree):
        where = f"{os.path.basename(path)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRS:
            if not (isinstance(node.value, ast.Name) and node.value.id in NOT_PYDANTIC):
                out.append(f"{where}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pydantic"):
            out += [f"{where}: import {a.name}" for a in node.names if a.name in FORBIDDEN_IMPORTS]
        elif isinstance(node, ast.keyword) and node.arg in FORBIDDEN_KEYWORDS:
            out.append(f"{where}: {node.arg}=")
        elif isinstance(node, ast.ClassDef):
            out += [f"{where}: class {node.name}.Config" for b in node.body
                    if isinstance(b, ast.ClassDef) and b.name == "Config"]
    return out


def test_no_version_specific_names():
    files = [p for p in glob.glob(os.path.join(REFSERVER, "*.py"))
             if os.path.basename(p) != "compat.py"]
    assert len(files) >= 5, files
    found = [v for p in sorted(files) for v in violations(p)]
    assert not found, "use refserver/compat.py instead of:\n" + "\n".join(found)


def test_checker_sees_each_kind(tmp_path):
    """The check above fails on each kind of name it looks for."""
    bad = tmp_path / "bad.py"
    bad.write_text("from pydantic import Extra, Field\n"
                   "class A(Base):\n    x: str = Field(..., regex='a')\n"
                   "    class Config:\n        extra = Extra.allow\n"
                   "A.parse_obj({}).dict()\napp.on_event('startup')\nresp.json()\n")
    got = sorted(v.split(": ", 1)[1] for v in violations(str(bad)))
    assert got == sorted(["import Extra", "regex=", "class A.Config", ".dict", ".parse_obj",
                          ".on_event"]), got


def test_models_round_trip():
    """Unknown fields are kept, absent optionals left out of the wire text, the app → server
    table is keyed by each model's type default."""
    ready = {"type": "app_ready", "instance_id": "a", "config_path": "/c.txt", "process_id": 7,
             "streams_count": 3, "seq": 1, "from_the_future": {"x": 1},
             "resumed": {"cameras": 1, "files": 2, "from_pid": 6}}
    msg = m.parse_app_message(ready)
    assert isinstance(msg, m.AppReady) and msg.resumed.files == 2
    out = compat.dump(msg)
    assert out["from_the_future"] == {"x": 1} and out["version"] is None
    wire = compat.dump_json(msg, exclude_none=True)
    assert '"version"' not in wire and '"from_the_future"' in wire
    assert m.APP_MESSAGES["engine_restarted"] is m.EngineRestarted
    assert m.SERVER_REQUESTS["push_file"] is m.PushFile
    push = compat.validate(m.PushFile, {"stream_id": 0, "camera_id": 1, "files": [
        {"file_type": "file", "file_id": 1, "file_path": "/v/1.mp4", "file_name": "1.mp4"},
        {"file_type": "eos"}]})
    assert [type(f) for f in push.files] == [m.FileItem, m.EosItem]
    with pytest.raises(pydantic.ValidationError):
        m.parse_app_message({"type": "file_done", "stream_id": "zero"})


def test_pattern_field_and_lifespan(tmp_path, monkeypatch):
    """LaunchRequest's app_id pattern refuses a bad id with 422; the reaper runs between
    the lifespan's start and end."""
    monkeypatch.setenv("REFSERVER_DATA_DIR", str(tmp_path))
    from refserver import app as refapp
    app = refapp.create_app()
    hub = app.state.hub
    with TestClient(app) as client:
        assert hub._reaper is not None and not hub._reaper.done()
        r = client.post("/instances", json={"app_id": "a b", "config_path": "/c.txt"})
        assert r.status_code == 422, r.text
        assert "app_id" in r.text
        r = client.post("/instances", json={"app_id": "ok.1", "config_path": "/c.txt",
                                            "launch": False})
        assert r.status_code == 200 and r.json()["app_id"] == "ok.1", r.text
        assert client.get("/instances/ok.1").json()["config_path"] == "/c.txt"
    assert hub._reaper.cancelled() or hub._reaper.done()
