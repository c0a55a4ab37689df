"""Secure links against real TLS: the reference server under uvicorn with --ssl-certfile/
--ssl-keyfile (and --ssl-ca-certs + --ssl-cert-reqs 2 for mutual TLS), bearer tokens per
app_id, certificates made here with openssl; the metrics port behind an exporter-toolkit
web config, scraped over TLS with basic auth by a real Prometheus.

Run with -s to see how long each reconnect took once the right credential was in place."""
from __future__ import annotations

import datetime
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import time

import bcrypt
import httpx
import pytest

import harness as h


# ---------------------------------------------------------------- fixtures and helpers

@pytest.fixture(scope="module")
def pki(root):
    return h.Pki(os.path.join(root, "pki"), "link")


@pytest.fixture(scope="module")
def stranger(root):
    """Another CA: its certificates are trusted by nobody here."""
    return h.Pki(os.path.join(root, "pki-stranger"), "stranger")


class Tokens:
    """The reference server's REFSERVER_WS_TOKENS_FILE: `<app_id> <token>` lines, read
    by the server at every upgrade."""

    def __init__(self, path: str) -> None:
        self.path = path
        with open(path, "w") as fh:
            fh.write("# app_id token\n")

    def grant(self, app_id: str, token: str) -> None:
        with open(self.path, "a") as fh:
            fh.write(f"{app_id} {token}\n")


@pytest.fixture(scope="module")
def tokens(root):
    return Tokens(os.path.join(root, "ws-tokens"))


@pytest.fixture(scope="module")
def tls_server(root, binaries, pki, tokens):
    """https/wss with a server certificate of pki's CA; tokens per app_id."""
    srv = h.Server(os.path.join(root, "server-tls"), tls=pki,
                   env={"REFSERVER_WS_TOKENS_FILE": tokens.path}).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def mtls_server(root, binaries, pki):
    """https/wss that requires a client certificate of pki's CA (no tokens)."""
    srv = h.Server(os.path.join(root, "server-mtls"), tls=pki, client_certs=True).start()
    yield srv
    srv.stop()


def log_records(root: str, app_id: str):
    out = []
    for path in sorted(glob.glob(os.path.join(root, "logs", f"instid_{app_id}-pid_*", "*.log*"))):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    return out


def with_message(root: str, app_id: str, message: str):
    return [r for r in log_records(root, app_id) if r.get("message") == message]


def wait_log(root: str, app_id: str, message: str, count: int = 1, timeout: float = 30):
    return h.wait_until(lambda: (lambda rs: rs if len(rs) >= count else None)(
        with_message(root, app_id, message)), timeout, f"{count} × {message!r} in {app_id}'s log")


def pid_of(root: str, app_id: str, which: str) -> int:
    path = os.path.join(root, "inst", app_id, f"{which}.pid")
    h.wait_until(lambda: os.path.exists(path), 30, path)
    with open(path) as fh:
        return int(fh.read())


def proc(pid: int, what: str) -> bytes:
    with open(f"/proc/{pid}/{what}", "rb") as fh:
        return fh.read()


def log_time(record) -> float:
    return datetime.datetime.fromisoformat(record["time"].replace("Z", "+00:00")).timestamp()


def replace_file(path: str, data: str) -> float:
    """Rotate path as a deployment tool does (a new file renamed over it); returns when."""
    with open(path + ".new", "w") as fh:
        fh.write(data)
    os.chmod(path + ".new", 0o600)
    os.rename(path + ".new", path)
    return time.time()


def reconnect_time(root: str, app_id: str, since: float) -> float:
    """Seconds from since to the instance's next confirmed handshake, by its own log."""
    rec = h.wait_until(lambda: next((r for r in with_message(root, app_id, "link: handshake confirmed")
                                     if log_time(r) >= since - 0.002), None),
                       30, f"{app_id}'s handshake after the rotation")
    return log_time(rec) - since


def assert_no_secret(secret: str, root: str, app_id: str, server: h.Server) -> None:
    """The secret is in no log, state file, command line, engine environment, record."""
    needle = secret.encode()
    sup, eng = pid_of(root, app_id, "supervisor"), pid_of(root, app_id, "engine")
    assert f"APP_ID={app_id}".encode() in proc(sup, "cmdline")  # the re-exec happened
    for pid, what in ((sup, "cmdline"), (eng, "cmdline"), (eng, "environ")):
        assert needle not in proc(pid, what), f"/proc/{pid}/{what} holds the secret"
    assert b"DS_WS_TOKEN=" not in proc(eng, "environ")
    rec = server.client.instance(app_id)
    if rec.get("pid") and h.alive(rec["pid"]):  # the spec's bash wrapper
        assert needle not in proc(rec["pid"], "cmdline")
    files = glob.glob(os.path.join(root, "logs", f"instid_{app_id}-pid_*", "*"))
    files += glob.glob(os.path.join(root, "inst", app_id, "state*"))
    files += [p for p in (rec.get("log_path"), os.path.join(server.data_dir, "server.log"),
                          os.path.join(server.data_dir, "instances.json")) if p]
    assert len(files) >= 4, files
    for path in files:
        if os.path.isfile(path):
            with open(path, "rb") as fh:
                assert needle not in fh.read(), f"{path} holds the secret"
    assert secret not in json.dumps(server.client.instances())


def metric(text: str, name: str) -> float:
    got = [line.rsplit(" ", 1)[1] for line in text.splitlines()
           if line.startswith(name + "{") or line.startswith(name + " ")]
    assert len(got) == 1, (name, got)
    return float(got[0])


# ---------------------------------------------------------------- the link

def test_right_token_over_tls(launcher, tls_server, tokens, pki, root, clips):
    """Token and private CA right: app_ready → execute_ack confirmed over wss, requests
    answered; the token in no log, command line or engine environment."""
    app_id = launcher.new_id("tok")
    token = secrets.token_urlsafe(24)
    tokens.grant(app_id, token)
    port = h.free_port()
    # The server gives the instance its token (DS_WS_TOKEN in the launch environment).
    launcher.launch("tok", app_id=app_id, server=tls_server,
                    env={"DS_WS_CA_FILE": pki.ca, "DS_METRICS_ADDR": f"127.0.0.1:{port}"})
    c = tls_server.client
    hello = c.msgs(app_id, types="app_ready")[-1]
    assert hello["instance_id"] == app_id and hello["status"] == "ok"
    wait_log(root, app_id, "link: handshake confirmed", timeout=10)
    assert c.metrics(app_id)["type"] == "metrics"
    out = launcher.out_dir(app_id, 1)
    started = c.start(app_id, **h.start_body(0, 1, "file", out, init=h.file_item(10, clips["c0"], out)))
    assert started["status"] == "ok"
    c.wait_message(app_id, lambda m: m["type"] == "analysis_complete", timeout=30)
    scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert metric(scrape, "ds_analysis_link_connected") == 1
    assert token not in scrape
    assert_no_secret(token, root, app_id, tls_server)


def test_wrong_or_missing_token_refused_then_rotated(launcher, tls_server, tokens, pki, root, tmp_path):
    """A wrong token and no token are refused before accept (uvicorn: HTTP 403), logged as
    refusals, retried with the backoff, no crash, /readyz 503, link_connected 0. The right
    token written into the token file is used at the next attempt."""
    wrong_id, missing_id = launcher.new_id("wrongtok"), launcher.new_id("notok")
    right = secrets.token_urlsafe(24)
    tokens.grant(wrong_id, right)  # missing_id has no line: the server gives it no token
    token_file = str(tmp_path / "token")
    replace_file(token_file, "not-the-token-" + secrets.token_hex(8) + "\n")
    wrong_port, missing_port = h.free_port(), h.free_port()
    launcher.launch("wrongtok", app_id=wrong_id, server=tls_server, wait=False,
                    env={"DS_WS_CA_FILE": pki.ca, "DS_WS_TOKEN_FILE": token_file,
                         "DS_METRICS_ADDR": f"127.0.0.1:{wrong_port}"})
    launcher.launch("notok", app_id=missing_id, server=tls_server, wait=False,
                    env={"DS_WS_CA_FILE": pki.ca, "DS_METRICS_ADDR": f"127.0.0.1:{missing_port}"})

    for app_id, port in ((wrong_id, wrong_port), (missing_id, missing_port)):
        refusals = wait_log(root, app_id, "link: handshake refused by server", count=3)
        assert {r["status"] for r in refusals} == {403}, refusals
        assert refusals[0]["status_text"] == "403 Forbidden"
        assert not with_message(root, app_id, "link: connect failed")
        assert with_message(root, app_id, "link: backing off before reconnecting")
        assert h.alive(pid_of(root, app_id, "supervisor"))
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 503
        assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        scrape = httpx.get(f"http://127.0.0.1:{port}/metrics").text
        assert metric(scrape, "ds_analysis_link_connected") == 0
        assert metric(scrape, "ds_analysis_up") == 1
        rec = tls_server.client.instance(app_id)
        assert rec["status"] == "launched" and rec["ws_status"] == "disconnected", rec
    with open(os.path.join(tls_server.data_dir, "server.log")) as fh:
        server_log = fh.read()
    assert f"(app_id {wrong_id}): invalid token (401)" in server_log
    assert f"(app_id {missing_id}): missing bearer token (401)" in server_log

    rotated = replace_file(token_file, right + "\n")
    took = reconnect_time(root, wrong_id, rotated)
    tls_server.client.wait_connected(wrong_id, timeout=10)
    print(f"\nrotated token file: connected {took * 1000:.0f} ms after the right token was in place "
          f"(backoff cap 500 ms)")
    assert took < 0.5 + 2.0, took
    assert httpx.get(f"http://127.0.0.1:{wrong_port}/readyz").status_code == 200
    assert_no_secret(right, root, wrong_id, tls_server)


def test_wrong_ca_refused(launcher, tls_server, tokens, stranger, root):
    """A server certificate the instance does not trust: no connection, the log names the
    certificate problem, no crash."""
    app_id = launcher.new_id("wrongca")
    tokens.grant(app_id, secrets.token_urlsafe(24))
    launcher.launch("wrongca", app_id=app_id, server=tls_server, wait=False,
                    env={"DS_WS_CA_FILE": stranger.ca})
    fails = wait_log(root, app_id, "link: TLS handshake failed", count=2)
    assert "x509: certificate signed by unknown authority" in fails[0]["error"], fails[0]
    assert not with_message(root, app_id, "link: handshake confirmed")
    assert h.alive(pid_of(root, app_id, "supervisor"))
    assert tls_server.client.instance(app_id)["ws_status"] == "disconnected"


def test_mutual_tls(launcher, mtls_server, pki, stranger, root, tmp_path):
    """uvicorn with --ssl-cert-reqs 2: no client certificate → refused at the TLS layer; a
    certificate of another CA → refused; the right one rotated into its files → connected."""
    bare = launcher.launch("mtls-bare", server=mtls_server, wait=False, env={"DS_WS_CA_FILE": pki.ca})
    cert, key = str(tmp_path / "client.pem"), str(tmp_path / "client.key")
    shutil.copy(stranger.client_cert, cert)
    shutil.copy(stranger.client_key, key)
    rot = launcher.launch("mtls-rot", server=mtls_server, wait=False,
                          env={"DS_WS_CA_FILE": pki.ca, "DS_WS_CLIENT_CERT": cert, "DS_WS_CLIENT_KEY": key})

    # Python's ssl under uvicorn 0.17 sends no alert: after the TLS 1.3 handshake it just
    # closes, and the instance says what it knows: the server asked for a certificate.
    fails = wait_log(root, bare, "link: TLS handshake failed", count=2)
    assert ("the server asked for a client certificate, none is configured (ws-client-cert), "
            "and it closed the connection") in fails[0]["error"], fails[0]
    # Python's ssl names no acceptable CA in its request: the stranger's certificate goes.
    fails = wait_log(root, rot, "link: TLS handshake failed", count=2)
    assert ("the server asked for a client certificate and closed the connection after ours"
            in fails[0]["error"]), fails[0]
    for app_id in (bare, rot):
        assert not with_message(root, app_id, "link: connect failed")
        assert not with_message(root, app_id, "link: handshake confirmed")
        assert h.alive(pid_of(root, app_id, "supervisor"))

    # The key first: until the certificate follows, the pair does not match, which is a
    # logged credentials error at each attempt, not a crash.
    with open(pki.client_key) as fh:
        replace_file(key, fh.read())
    bad = wait_log(root, rot, "link: credentials unusable, not connecting")
    assert "private key does not match public key" in bad[0]["error"]
    with open(pki.client_cert) as fh:
        rotated = replace_file(cert, fh.read())
    took = reconnect_time(root, rot, rotated)
    mtls_server.client.wait_connected(rot, timeout=10)
    print(f"\nrotated client certificate: connected {took * 1000:.0f} ms after it was in place")
    assert took < 0.5 + 2.0, took
    assert mtls_server.client.metrics(rot)["type"] == "metrics"


FAKE_DOCKER = """import json, os, sys
# Stands for `docker exec -d <env> <ctr>`: records its command line, then runs the rest.
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "w") as fh:
    json.dump(args, fh)
rest = args[args.index("--") + 1:]
os.execvp(rest[0], rest)
"""


def test_shared_token_through_launch_prefix(launcher, root, binaries, tmp_path):
    """REFSERVER_WS_TOKEN and a `docker exec`-like REFSERVER_LAUNCH_PREFIX: the launched
    instance gets the token by name (`-e DS_WS_TOKEN`, the value in the environment), not
    on the prefix's command line; the server's own REFSERVER_* variables stay with it."""
    token = secrets.token_urlsafe(24)
    fake = tmp_path / "fake_docker.py"
    fake.write_text(FAKE_DOCKER)
    argv_log = tmp_path / "argv.json"
    srv = h.Server(os.path.join(root, "server-prefix"), env={
        "REFSERVER_WS_TOKEN": token, "FAKE_DOCKER_LOG": str(argv_log),
        "REFSERVER_LAUNCH_PREFIX": f"{h.PY} {fake} {{docker_env}} --"}).start()
    try:
        app_id = launcher.launch("prefix", server=srv)
        argv = json.loads(argv_log.read_text())
        assert "DS_WS_TOKEN" in argv and argv[argv.index("DS_WS_TOKEN") - 1] == "-e", argv
        assert token not in json.dumps(argv)
        assert f"DS_WS_URL={srv.ws_url}" in argv
        assert_no_secret(token, root, app_id, srv)
        assert b"REFSERVER_" not in proc(pid_of(root, app_id, "engine"), "environ")
    finally:
        srv.stop()


# ---------------------------------------------------------------- the metrics port

def readme_block(marker: str) -> str:
    readme = open(os.path.join(h.REPO, "README.md"), encoding="utf-8").read()
    section = readme[readme.index("### Metrics and health probes"):]
    section = section[section.index(marker):]
    block = section[section.index("```yaml\n") + 8:]
    return block[:block.index("```")]


def test_metrics_web_config_scraped_by_prometheus(launcher, pki, root, tmp_path):
    """README's web config and TLS scrape config, made concrete: a real Prometheus scrapes
    the instance over TLS with basic auth; a wrong password is 401, plain HTTP 400."""
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus missing: bash .ci/deps.sh installs Debian's prometheus")
    password = secrets.token_urlsafe(16)
    webdir = tmp_path / "web"
    webdir.mkdir()
    shutil.copy(pki.server_cert, webdir / "metrics.pem")
    shutil.copy(pki.server_key, webdir / "metrics.key")
    web = readme_block("web configuration file")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=10)).decode()
    assert "$2b$12$" in web
    web = "\n".join(line.split(": ")[0] + ": " + hashed if line.strip().startswith("prometheus: $2b$")
                    else line for line in web.splitlines()) + "\n"
    (webdir / "web.yml").write_text(web)

    port = h.free_port()
    app_id = launcher.launch("promtls", env={"DS_METRICS_ADDR": f"127.0.0.1:{port}",
                                             "DS_METRICS_WEB_CONFIG": str(webdir / "web.yml")})
    base = f"https://127.0.0.1:{port}"
    ok = httpx.get(base + "/metrics", verify=pki.ca, auth=("prometheus", password))
    assert ok.status_code == 200 and f'ds_analysis_ready{{app_id="{app_id}"}} 1' in ok.text
    for auth in (("prometheus", "wrong"), ("nobody", password), None):
        r = httpx.get(base + "/metrics", verify=pki.ca, auth=auth)
        assert r.status_code == 401 and "ds_analysis" not in r.text, (auth, r.status_code)
    plain = httpx.get(f"http://127.0.0.1:{port}/metrics", auth=("prometheus", password))
    assert plain.status_code == 400 and "ds_analysis" not in plain.text
    assert httpx.get(base + "/readyz", verify=pki.ca, auth=("prometheus", password)).status_code == 200

    # README's scrape config: valid as written, then pointed at this instance.
    scrape = readme_block("over TLS with basic auth")
    (tmp_path / "readme.yml").write_text(scrape)
    res = subprocess.run(["promtool", "check", "config", "--syntax-only", str(tmp_path / "readme.yml")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
    (tmp_path / "password").write_text(password + "\n")
    targets = scrape[scrape.index("targets: [") + 10:]
    targets = targets[:targets.index("]")]
    concrete = (scrape.replace("/etc/prometheus/ds-metrics-ca.pem", pki.ca)
                .replace("/etc/prometheus/ds-metrics.password", str(tmp_path / "password"))
                .replace(targets, f"127.0.0.1:{port}")
                .replace("scrape_interval: 15s", "scrape_interval: 1s"))
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text(concrete)
    res = subprocess.run(["promtool", "check", "config", str(cfg)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

    prom_port = h.free_port()
    log = open(tmp_path / "prometheus.log", "wb")
    prom = subprocess.Popen([prometheus, f"--config.file={cfg}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    try:
        def query(q):
            try:
                r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": q})
            except httpx.TransportError:
                return None
            res = r.json()["data"]["result"] if r.status_code == 200 else []
            return res[0] if res else None

        up = h.wait_until(lambda: (lambda s: s if s and s["value"][1] == "1" else None)(
            query('up{job="ds-analysis"}')), 30, "Prometheus to scrape the instance")
        assert up["metric"]["instance"] == f"127.0.0.1:{port}"
        ready = h.wait_until(lambda: query(f'ds_analysis_ready{{app_id="{app_id}"}}'), 10, "ds_analysis_ready")
        assert ready["value"][1] == "1"
    finally:
        prom.send_signal(signal.SIGTERM)
        prom.wait(timeout=20)
    with open(tmp_path / "prometheus.log", "rb") as fh:
        assert password.encode() not in fh.read()


def test_bad_web_config_exit_2(launcher, tmp_path):
    """A web config that does not parse is a settings error: exit 2, one line."""
    bad = tmp_path / "web.yml"
    bad.write_text("tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n")
    app_id, p = launcher.spawn_direct("badweb", wait=False, env={
        "DS_METRICS_ADDR": f"127.0.0.1:{h.free_port()}", "DS_METRICS_WEB_CONFIG": str(bad)})
    assert p.wait(timeout=20) == 2
    out = open(os.path.join(launcher.root, f"{app_id}.out")).read()
    assert out.count("\n") == 1 and f"metrics-web-config {bad}: " in out, out
