"""The monitoring files against real parts. Debian's Prometheus (on 127.0.0.1, a free port,
a temporary storage folder, stopped by pid) scrapes two real instances (supervisor and
ds-gst-engine, launched through the reference server) with README.md's scrape config and
loads docker/prometheus/ds-analysis.rules.yml, while cameras play: files, bad files, a
live camera with a file camera queued behind it. Then every expression of the Grafana
dashboard docker/grafana/ds-analysis.json and every rule's, read from those files, is
evaluated through Prometheus's HTTP API: none may fail, and none may be empty where the
instances export its data. Without a GPU driver the instances export no GPU series
(README.md, "Monitoring"): the expressions that read only those must evaluate without an
error and are empty. Last, the rules must fire where the scenario makes them fire and
nowhere else: files failing on one instance, the other instance killed.

Run with -s to see the value of every panel and rule."""
from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import subprocess
from typing import Dict, Iterator, List, Tuple

import httpx
import pytest
import yaml

import harness as h
from harness import EOS, file_item, start_body

RULES = os.path.join(h.REPO, "docker", "prometheus", "ds-analysis.rules.yml")
DASHBOARD = os.path.join(h.REPO, "docker", "grafana", "ds-analysis.json")
PROVISIONING = os.path.join(h.REPO, "docker", "grafana", "provisioning")

# Grafana's own variables, as Grafana fills them in with the provisioned datasource's
# timeInterval (15 s): $__rate_interval is four scrape intervals.
GRAFANA_VARS = {"__rate_interval": "1m", "__interval": "15s", "__range": "1h"}
VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)|\[\[(\w+)\]\]")
# The series an expression reads: our metrics, and the scrape's `up`.
SELECTOR = re.compile(r"\b(ds_analysis_[a-z_]+|up)\b(\{[^}]*\})?")


# ---------------------------------------------------------------- the files

def dashboard() -> dict:
    with open(DASHBOARD, encoding="utf-8") as fh:
        return json.load(fh)


def all_panels(panels: List[dict]) -> Iterator[dict]:
    """Every panel, also those inside a collapsed row."""
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def panel_targets(dash: dict) -> List[Tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of the dashboard."""
    return [(p["title"], t["refId"], t["expr"]) for p in all_panels(dash["panels"])
            for t in p.get("targets", [])]


def substitute(expr: str, values: Dict[str, str]) -> str:
    """expr with the dashboard's and Grafana's variables filled in; an unknown one fails."""
    def fill(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        assert name in values, f"variable ${name} in {expr!r} is neither a dashboard variable nor handled here"
        return values[name]
    return VARIABLE.sub(fill, expr)


def selectors(expr: str) -> List[str]:
    return [m.group(0) for m in SELECTOR.finditer(expr)]


def gpu_only(expr: str) -> bool:
    """The expression reads GPU series only (NVML: absent without a GPU driver)."""
    names = [m.group(1) for m in SELECTOR.finditer(expr)]
    return bool(names) and all(n.startswith("ds_analysis_gpu_") for n in names)


def rules_file() -> List[dict]:
    with open(RULES, encoding="utf-8") as fh:
        return [r for g in yaml.safe_load(fh)["groups"] for r in g["rules"]]


def test_dashboard_and_provisioning_files():
    """The dashboard is importable as it stands: unique panel ids on a 24-column grid,
    every query on the templated datasource, app_id templated from ds_analysis_up; the
    provisioning files point Grafana at a Prometheus datasource and at the dashboard."""
    dash = dashboard()
    panels = list(all_panels(dash["panels"]))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), ids
    assert {p["title"] for p in panels if p["type"] == "row"} == {"Instances", "Slots", "GPU"}
    for p in panels:
        g = p["gridPos"]
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["h"] > 0, (p["title"], g)
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        for t in [p] + p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, (p["title"], t)
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    assert variables["app_id"]["query"]["query"] == "label_values(ds_analysis_up, app_id)"
    for _, _, expr in panel_targets(dash):
        substitute(expr, {**{k: "x" for k in variables}, **GRAFANA_VARS})

    with open(os.path.join(PROVISIONING, "datasources", "ds-analysis.yml"), encoding="utf-8") as fh:
        ds = yaml.safe_load(fh)
    assert ds["apiVersion"] == 1 and [d["type"] for d in ds["datasources"]] == ["prometheus"]
    assert ds["datasources"][0]["jsonData"]["timeInterval"] == GRAFANA_VARS["__interval"]
    with open(os.path.join(PROVISIONING, "dashboards", "ds-analysis.yml"), encoding="utf-8") as fh:
        prov = yaml.safe_load(fh)
    assert prov["apiVersion"] == 1 and prov["providers"][0]["type"] == "file"
    assert prov["providers"][0]["options"]["path"].startswith("/")


def test_readme_explains_every_alert():
    """README's alert table has one row per rule of the rules file, in its order."""
    with open(os.path.join(h.REPO, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    section = readme[readme.index("### Monitoring"):]
    section = section[:section.index("\n## ")]
    rows = re.findall(r"^\| `(DSAnalysis\w+)` \|", section, re.M)
    assert rows == [r["alert"] for r in rules_file()]


# ---------------------------------------------------------------- Prometheus

class Prometheus:
    """Debian's prometheus on a free loopback port with a temporary storage folder."""

    def __init__(self, config: str, directory: str) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            pytest.fail("prometheus missing: bash .ci/deps.sh installs Debian's prometheus")
        path = os.path.join(directory, "prometheus.yml")
        with open(path, "w") as fh:
            fh.write(config)
        res = subprocess.run(["promtool", "check", "config", path], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
        self.port = h.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(directory, "prometheus.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={path}", f"--storage.tsdb.path={os.path.join(directory, 'tsdb')}",
                 f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def api(self, path: str, **params) -> dict:
        """The data of an API call; a failed call (a query error) fails the test."""
        r = self.http.get("/api/v1/" + path, params=params)
        body = r.json()
        assert r.status_code == 200 and body["status"] == "success", (path, params, r.status_code, body)
        return body["data"]

    def query(self, expr: str) -> List[dict]:
        data = self.api("query", query=expr)
        assert data["resultType"] in ("vector", "scalar"), (expr, data)
        return data["result"] if data["resultType"] == "vector" else [{"metric": {}, "value": data["result"]}]

    def answering(self) -> bool:
        if self.proc.poll() is not None:
            with open(self.log, errors="replace") as fh:
                raise RuntimeError(f"prometheus exited with {self.proc.returncode}:\n{fh.read()[-2000:]}")
        try:
            return self.http.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def readme_scrape_config() -> str:
    """README.md's scrape config for five instances (the job the rules expect)."""
    with open(os.path.join(h.REPO, "README.md"), encoding="utf-8") as fh:
        readme = fh.read()
    section = readme[readme.index("### Metrics and health probes"):]
    block = section[section.index("```yaml\n") + 8:]
    return block[:block.index("```")]


def values(result: List[dict]) -> List[float]:
    return [float(s["value"][1]) for s in result]


def show(result: List[dict]) -> str:
    """A result in one line: each series's labels (but job and instance), then its value."""
    parts = []
    for s in result:
        labels = ",".join(f"{k}={v}" for k, v in sorted(s["metric"].items())
                          if k not in ("job", "instance", "__name__"))
        parts.append(f"{{{labels}}} {float(s['value'][1]):.4g}")
    return "; ".join(parts) if parts else "(empty)"


def play(c, launcher, clips, live_uri: str, busy: str, quiet: str) -> None:
    """The cameras of the scenario, until the file cameras are done and the live one plays.
    busy: six clips on slot 0; six bad inputs, then a clip, on slot 1; a live camera on
    slot 2 with a file camera queued behind it. quiet: six clips on slot 0; on slot 1 a
    fileset camera that played its two files and waits for more (running, not busy)."""
    out = launcher.out_dir
    good = [clips[f"c{i}"] for i in range(6)]
    bad = [clips[k] for k in ("missing", "empty", "random", "text", "truncated")] + \
        [os.path.join(os.path.dirname(clips["missing"]), "also-missing.mp4")]
    filesets = {(busy, 0, 10): (good, True), (busy, 1, 11): (bad + [clips["c0"]], True),
                (quiet, 0, 20): (good, True), (quiet, 1, 21): ([clips["c3"], clips["c4"]], False)}
    for (app, stream, cam), (paths, eos) in filesets.items():
        items = [file_item(cam * 100 + i, p, out(app, cam)) for i, p in enumerate(paths)]
        assert c.start(app, **start_body(stream, cam, "fileset", out(app, cam), init=items[0]))["status"] == "ok"
        c.push(app, stream, cam, items[1:] + ([EOS] if eos else []), ack_wait=0)
    live = {"file_type": "videostream", "file_id": 1200, "file_path": live_uri, "file_name": "live",
            "output_path": os.path.join(out(busy, 12), "1200.txt")}
    assert c.start(busy, **start_body(2, 12, "videostream", out(busy, 12), init=live,
                                      camera_path=live_uri))["status"] == "ok"
    queued = file_item(1300, clips["c1"], out(busy, 13))
    assert "queued" in c.start(busy, **start_body(2, 13, "file", out(busy, 13), init=queued))["message"]
    for app, cam in ((busy, 10), (busy, 11), (quiet, 20)):
        c.wait_message(app, lambda m, cam=cam: m["type"] == "analysis_complete" and m.get("camera_id") == cam,
                       timeout=60, what=f"camera {cam} to complete")
    c.wait_message(quiet, lambda m: m["type"] == "file_done" and m.get("file_id") == 2101, timeout=30)
    c.wait_message(busy, lambda m: m["type"] == "processing_started" and m.get("camera_id") == 12, timeout=30)


# ---------------------------------------------------------------- the live test

def test_dashboard_and_rules_on_live_instances(launcher, clips, live_uri, tmp_path):
    c = launcher.client
    busy_port, quiet_port = h.free_port(), h.free_port()
    busy = launcher.launch("mon", slots=3, env={"DS_METRICS_ADDR": f"127.0.0.1:{busy_port}"})
    quiet = launcher.launch("mon", slots=2, env={"DS_METRICS_ADDR": f"127.0.0.1:{quiet_port}"})
    apps = {busy, quiet}

    scrape = readme_scrape_config()
    targets = scrape[scrape.index("targets: [") + 10:]
    targets = targets[:targets.index("]")]
    config = ("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
              f"rule_files:\n  - {RULES}\n" +
              scrape.replace(targets, f"127.0.0.1:{busy_port}, 127.0.0.1:{quiet_port}")
              .replace("scrape_interval: 15s", "scrape_interval: 1s"))
    prom = Prometheus(config, str(tmp_path))
    try:
        h.wait_until(prom.answering, 30, "Prometheus to start")
        h.wait_until(lambda: sorted(values(prom.query('up{job="ds-analysis"}'))) == [1.0, 1.0], 30,
                     "Prometheus to scrape both instances")
        play(c, launcher, clips, live_uri, busy, quiet)

        # The new series say what the scenario did, once Prometheus has it: every file
        # that started has a time to its first frame (the live camera's too), the bad
        # inputs fail as input and every other class stays at 0 on both instances.
        def exported() -> Dict[str, Dict[str, float]]:
            got: Dict[str, Dict[str, float]] = {}
            for name in ("files_done_total", "files_failed_total", "time_to_first_frame_seconds_count"):
                for s in prom.query(f"sum by (app_id) (ds_analysis_{name})"):
                    got.setdefault(s["metric"]["app_id"], {})[name] = float(s["value"][1])
            for s in prom.query("sum by (app_id, class) (ds_analysis_file_errors_total)"):
                got.setdefault(s["metric"]["app_id"], {})["class " + s["metric"]["class"]] = float(s["value"][1])
            return got

        def as_played(got: Dict[str, Dict[str, float]]) -> bool:
            classes = {app: {k: v for k, v in got.get(app, {}).items() if k.startswith("class ")} for app in apps}
            return (set(classes[busy]) == set(classes[quiet]) and len(classes[busy]) > 1 and
                    classes[busy].pop("class input", None) == 6 and classes[quiet].pop("class input", None) == 0 and
                    all(v == 0 for cl in classes.values() for v in cl.values()) and
                    [got[busy].get(k) for k in ("files_done_total", "files_failed_total",
                                                "time_to_first_frame_seconds_count")] == [7, 6, 8] and
                    [got[quiet].get(k) for k in ("files_done_total", "files_failed_total",
                                                 "time_to_first_frame_seconds_count")] == [8, 0, 8])
        try:
            h.wait_until(lambda: as_played(exported()), 30, "Prometheus to have the scenario's counts")
        except h.Timeout:
            pytest.fail(f"exported: {exported()}")
        ready = lambda expr: h.wait_until(lambda: prom.query(expr), 30, expr)  # noqa: E731
        assert values(ready(f'ds_analysis_oldest_queued_file_age_seconds{{app_id="{busy}",stream_id="2"}} > 0'))
        assert values(ready(f'ds_analysis_slot_frames_per_second{{app_id="{busy}",stream_id="2"}} > 5'))
        assert values(prom.query(f'ds_analysis_slot_busy{{app_id="{busy}",stream_id="2"}}')) == [1]
        assert values(prom.query(f'ds_analysis_slot_state{{app_id="{quiet}",stream_id="1",state="running"}}')) == [1]
        assert values(prom.query(f'ds_analysis_slot_busy{{app_id="{quiet}",stream_id="1"}}')) == [0]
        speeds = prom.query("sum by (app_id) (ds_analysis_file_speed_ratio_count)")
        assert {s["metric"]["app_id"] for s in speeds if float(s["value"][1]) > 0} == apps, show(speeds)

        gpu = bool(prom.query('{__name__=~"ds_analysis_gpu_.+"}'))
        if not gpu:
            assert shutil.which("nvidia-smi") is None, "a GPU driver is here but no instance exports GPU series"

        # The dashboard's app_id variable, as Grafana's label_values asks for it.
        dash = dashboard()
        var = next(v for v in dash["templating"]["list"] if v["name"] == "app_id")
        metric, label = re.fullmatch(r"label_values\((\w+), (\w+)\)", var["query"]["query"]).groups()
        assert apps <= set(prom.api(f"label/{label}/values", **{"match[]": metric})), var

        fill = {"app_id": "|".join(sorted(apps)), "datasource": "unused", **GRAFANA_VARS}
        report: List[str] = []

        def check(name: str, expr: str, may_be_empty: bool) -> List[dict]:
            """expr evaluates; unless may_be_empty, every series it reads exists and its
            result is not empty, finite, and (when it is per app_id) has both instances."""
            for sel in selectors(expr):
                found = prom.query(sel)
                assert found or may_be_empty, f"{name}: {sel} selects nothing"
            if may_be_empty:
                result = prom.query(expr)
            else:
                def good():
                    r = prom.query(expr)
                    ids = {s["metric"].get("app_id") for s in r} - {None}
                    ok = r and all(math.isfinite(v) for v in values(r)) and (not ids or ids == apps)
                    return r if ok else None
                try:
                    result = h.wait_until(good, 20, f"{name}: {expr}")
                except h.Timeout:
                    pytest.fail(f"{name}: {expr} gave {show(prom.query(expr))}")
            report.append(f"{name}: {show(result)}")
            return result

        for title, ref, expr in panel_targets(dash):
            result = check(f"panel {title!r} {ref}", substitute(expr, fill), gpu_only(expr) and not gpu)
            if gpu_only(expr) and not gpu:
                assert result == [], (title, result)

        # The rules as Prometheus loaded them: every one from the file, evaluated by
        # Prometheus itself without an error, and its expression evaluated here.
        def loaded() -> Dict[str, dict]:
            return {r["name"]: r for g in prom.api("rules")["groups"] for r in g["rules"]}
        assert set(loaded()) == {r["alert"] for r in rules_file()}
        h.wait_until(lambda: all(r["health"] != "unknown" for r in loaded().values()), 10,
                     "Prometheus to evaluate every rule")
        for rule in rules_file():
            got = loaded()[rule["alert"]]
            assert got["health"] == "ok" and not got.get("lastError"), got
            # An alert's expression is empty while it does not fire: the series it
            # reads must exist.
            expr = rule["expr"]
            for sel in selectors(expr):
                assert prom.query(sel) or gpu_only(sel) and not gpu, f"{rule['alert']}: {sel} selects nothing"
            report.append(f"rule {rule['alert']}: {show(prom.query(expr))}")

        # The rules fire where the scenario makes them fire, and nowhere else: a third of
        # the busy instance's files failed; then the quiet instance is killed. A pending
        # alert counts (every rule but one waits a while before it fires). While the live
        # camera connects, its slot is busy without frames for a moment: each check waits
        # until the set of alerts is the one expected, then for two more evaluations by
        # Prometheus, which must not change it.
        def active() -> Dict[Tuple[str, ...], str]:
            return {tuple(a["labels"].get(k) or "" for k in ("alertname", "app_id", "instance", "stream_id")): a["state"]
                    for a in prom.api("alerts")["alerts"]}

        def evaluations() -> str:
            return prom.api("rules")["groups"][0]["lastEvaluation"]

        def settles_at(want: set) -> Dict[Tuple[str, ...], str]:
            try:
                h.wait_until(lambda: set(active()) == want, 20, f"the alerts {want}")
            except h.Timeout:
                assert set(active()) == want
            for _ in range(2):
                last = evaluations()
                h.wait_until(lambda: evaluations() != last, 10, "the next rule evaluation")
                assert set(active()) == want
            return active()

        errors_high = ("DSAnalysisFileErrorsHigh", busy, "", "")
        report.append(f"alerts before the kill: {settles_at({errors_high})}")
        h.kill_tree(c.instance(quiet)["process_id"])
        down = ("DSAnalysisInstanceDown", "", f"127.0.0.1:{quiet_port}", "")
        report.append(f"alerts after killing {quiet}: {settles_at({errors_high, down})}")
        print("\n" + "\n".join(report))
    finally:
        prom.stop()
