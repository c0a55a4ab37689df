"""The Prometheus exporter of a real instance (DS_METRICS_ADDR): probes, and scrapes that
`promtool check metrics` accepts, with values that move as files play."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

import harness as h
from harness import EOS, file_item, start_body

SAMPLE = re.compile(r'^([a-z_]+)(?:\{(.*)\})? (\S+)$')


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(base):
    """The scrape checked by promtool, as {(name, frozenset(labels)): value}."""
    status, text = fetch(base + "/metrics")
    assert status == 200, text
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool missing: bash .ci/deps.sh installs Debian's prometheus")
    res = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert res.returncode == 0 and not (res.stdout + res.stderr).strip(), res.stdout + res.stderr + text
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        assert m, line
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name, **labels):
    want = {(k, str(v)) for k, v in labels.items()}
    got = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    assert len(got) == 1, (name, labels, got)
    return got[0]


def test_scrape_moves_as_files_play(launcher, clips):
    c = launcher.client
    port = h.free_port()
    base = f"http://127.0.0.1:{port}"
    app_id = launcher.launch("prom", env={"DS_METRICS_ADDR": f"127.0.0.1:{port}"})
    h.wait_until(lambda: fetch(base + "/readyz")[0] == 200, 30, "/readyz 200")
    assert fetch(base + "/healthz") == (200, "ok\n")

    first = scrape(base)
    assert value(first, "ds_analysis_up", app_id=app_id) == 1
    assert value(first, "ds_analysis_ready", app_id=app_id) == 1
    assert value(first, "ds_analysis_link_connected", app_id=app_id) == 1
    assert value(first, "ds_analysis_slot_state", stream_id=0, state="idle") == 1
    assert value(first, "ds_analysis_files_done_total", stream_id=0) == 0
    assert value(first, "ds_analysis_process_resident_memory_bytes", process="engine") > 1 << 20
    assert not [k for k in first if k[0].startswith("ds_analysis_gpu_")] or shutil.which("nvidia-smi")

    out = launcher.out_dir(app_id, 70)
    files = [file_item(7000 + i, clips[f"c{i}"], out) for i in range(3)]
    assert c.start(app_id, **start_body(0, 70, "fileset", out, init=files[0]))["status"] == "ok"
    c.push(app_id, 0, 70, files[1:] + [EOS], ack_wait=0)
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete" and m.get("camera_id") == 70,
                   timeout=60)

    second = scrape(base)
    assert value(second, "ds_analysis_files_done_total", stream_id=0) == 3
    assert value(second, "ds_analysis_files_failed_total", stream_id=0) == 0
    assert value(second, "ds_analysis_frames_total", stream_id=0) == 90  # 3 clips of 30 frames
    assert value(second, "ds_analysis_switch_gap_seconds_count", stream_id=0) == 2
    assert value(second, "ds_analysis_switch_gap_seconds_bucket", stream_id=0, le="2") == 2
    assert value(second, "ds_analysis_messages_total", direction="sent", type="file_done") == 3
    assert value(second, "ds_analysis_messages_total", direction="received", type="push_file") == 1
    assert value(second, "ds_analysis_slot_state", stream_id=0, state="idle") == 1
    assert value(second, "ds_analysis_files_done_total", stream_id=1) == 0
    assert (value(second, "ds_analysis_process_cpu_seconds_total", process="engine") >=
            value(first, "ds_analysis_process_cpu_seconds_total", process="engine"))


def test_readme_scrape_config(tmp_path):
    """README's scrape config for five instances is one `promtool check config` accepts."""
    readme = open(os.path.join(h.REPO, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("### Metrics and health probes"):]
    block = section[section.index("```yaml\n") + 8:]
    block = block[:block.index("```")]
    assert block.count("127.0.0.1:910") == 5, block
    path = tmp_path / "prometheus.yml"
    path.write_text(block)
    res = subprocess.run([shutil.which("promtool") or "promtool", "check", "config", str(path)],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
