"""Certificates that renew themselves, for real: Pebble (Let's Encrypt's test CA), lego running the
rendered ACME loop, and nginx running the rendered config under the LB's reload loop.

Everything runs in one network namespace (fw-…-acme) whose /etc/hosts names the apps, so Pebble
validates HTTP-01 on port 80 of the rendered nginx exactly as Let's Encrypt would on the LB.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from components.config import LoadBalancerSpec
from components.load_balancer import edge_settings
from components.render.acme import Acme, acme_loop_script
from components.render.nginx import NginxSettings, Site, Tls, Upstream, render_nginx_conf
from components.render.nginx_runtime import reload_loop_script
from realservices import loopback_conf, require_binary, wait_until

APPS = ("chat.test", "docs.test")
STUB_PORT = 8001

_PORT_OPEN = "import socket,sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=1).close()"

# HTTPS requests on fresh connections until three certificates were seen (placeholder, issued,
# renewed) and 20 more requests passed, or the deadline: every reply and certificate, in order.
_CLIENT = """
import base64, http.client, json, socket, ssl, sys, time
deadline = time.monotonic() + float(sys.argv[1])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
certs, failures, ok, after = [], [], 0, 0
while time.monotonic() < deadline and after < 20:
    try:
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", 443), timeout=10), server_hostname="chat.test")
        der = sock.getpeercert(binary_form=True)
        conn = http.client.HTTPSConnection("chat.test", 443, context=ctx, timeout=10)
        conn.sock = sock
        conn.request("GET", "/api/config")
        status = conn.getresponse().status
        conn.close()
        if status != 200:
            failures.append(f"HTTP {status}")
        else:
            ok += 1
        if not certs or certs[-1] != der:
            certs.append(der)
        if len(set(certs)) >= 3:
            after += 1
    except Exception as e:
        failures.append(repr(e))
    time.sleep(0.05)  # pacing, not synchronisation: the loop ends on what it has seen
print(json.dumps({"ok": ok, "failures": failures, "certs": [base64.b64encode(c).decode() for c in certs]}))
"""


class Namespace:
    def __init__(self, work: Path) -> None:
        self.name = f"fw-{os.getpid() % 100000}-acme"
        self.hosts_dir = Path("/etc/netns") / self.name
        self.work = work
        self.procs: list[subprocess.Popen] = []

    def __enter__(self) -> Namespace:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self.hosts_dir.mkdir(parents=True)
        (self.hosts_dir / "hosts").write_text(f"127.0.0.1 localhost {' '.join(APPS)}\n")
        return self

    def __exit__(self, *exc: object) -> None:
        for proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.hosts_dir, ignore_errors=True)
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen(["ip", "netns", "exec", self.name, *argv], stdout=log, stderr=log,
                                env={**os.environ, **(env or {})}, start_new_session=True)
        self.procs.append(proc)
        return proc

    def run(self, argv: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True,
                              timeout=timeout)

    def wait_for_port(self, port: int, proc: subprocess.Popen, what: str) -> None:
        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited: {(self.work / (what + '.log')).read_text()[-2000:]}")
            return self.run([sys.executable, "-c", _PORT_OPEN, str(port)], 10).returncode == 0
        wait_until(up, 30, f"{what} on :{port}")


def self_signed(cert: Path, key: Path, name: str, *extra: str) -> None:
    cert.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", f"/CN={name}", *extra], check=True, capture_output=True)


def describe(der_b64: str) -> str:
    """Serial, issuer and names of a certificate, as openssl prints them."""
    return subprocess.run([require_binary("openssl"), "x509", "-inform", "DER", "-noout", "-serial", "-issuer",
                           "-ext", "subjectAltName"], input=base64.b64decode(der_b64), capture_output=True,
                          check=True).stdout.decode()


@pytest.fixture
def work() -> Iterator[Path]:
    for binary in ("pebble", "lego", "nginx", "openssl", "ip"):
        require_binary(binary, "apt-get install pebble lego nginx openssl iproute2 (bash .ci/run)")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    # nginx's workers (nobody) read the challenge tokens: a directory they may enter.
    work = Path(tempfile.mkdtemp(prefix="fw-acme-"))
    work.chmod(0o755)
    try:
        yield work
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_certificate_is_issued_renewed_and_served_by_the_reload_loop_without_a_failed_request(work: Path) -> None:
    live = Tls(str(work / "nginx/tls/fullchain.pem"), str(work / "nginx/tls/privkey.pem"))
    acme = Acme(email="ops@chat.test", directory="https://localhost:14000/dir", domains=APPS,
                webroot=str(work / "acme-webroot"), state_dir=str(work / "lego"),
                certificate_path=live.certificate_path, key_path=live.key_path,
                renew_days=100000,  # every round renews: a renewal within the test
                interval_s=3, random_sleep=False)
    prefix = work / "nginx"
    (prefix / "temp").mkdir(parents=True)
    settings = NginxSettings(http_port=80, https_port=443, tls=live, client_max_body_size_mb=25,
                             health_path="/lb-health", proxy_read_timeout_s=600, api_read_timeout_s=60, max_fails=3, fail_timeout_s=10,
                             keepalive=16, pid_path=str(prefix / "nginx.pid"), error_log=str(prefix / "error.log"),
                             access_log=str(prefix / "access.log"), temp_dir=str(prefix / "temp"),
                             edge=replace(edge_settings(LoadBalancerSpec(node="lb")), acme_webroot=acme.webroot))
    conf = render_nginx_conf(settings, [Site(h.split(".")[0], h, (Upstream("127.0.0.1", STUB_PORT),)) for h in APPS])
    (prefix / "nginx.conf").write_text(loopback_conf(conf, {80: 80, 443: 443}, {}, {}))
    # What the deploy puts in place before the first issuance, so nginx can start at all.
    self_signed(Path(live.certificate_path), Path(live.key_path), "placeholder")
    pebble_cert, pebble_key = work / "pebble/cert.pem", work / "pebble/key.pem"
    self_signed(pebble_cert, pebble_key, "localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    (work / "pebble/config.json").write_text(json.dumps({"pebble": {
        "listenAddress": "127.0.0.1:14000", "managementListenAddress": "127.0.0.1:15000",
        "certificate": str(pebble_cert), "privateKey": str(pebble_key), "httpPort": 80, "tlsPort": 5001,
        "ocspResponderURL": "", "externalAccountBindingRequired": False}}))

    with Namespace(work) as ns:
        pebble = ns.start("pebble", ["pebble", "-config", str(work / "pebble/config.json")],
                          env={"PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"})
        stub = ns.start("stub", [sys.executable, str(Path(__file__).parents[1] / "stub_upstream.py"), "chat-0",
                                 str(STUB_PORT)])
        lb = ns.start("nginx", ["sh", "-c", reload_loop_script(str(prefix / "nginx.conf"), nginx="nginx -e stderr",
                                                               interval_s=1, watch=[live.certificate_path,
                                                                                    live.key_path])])
        for port, proc, what in ((14000, pebble, "pebble"), (STUB_PORT, stub, "stub"), (443, lb, "nginx")):
            ns.wait_for_port(port, proc, what)
        client = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-c", _CLIENT, "150"],
                                  stdout=subprocess.PIPE, text=True)
        ns.start("lego", ["sh", "-c", acme_loop_script(acme)],
                 env={"LEGO_CA_CERTIFICATES": str(pebble_cert)})
        out, _ = client.communicate(timeout=200)
        seen = json.loads(out)
        lego_log = (work / "lego.log").read_text()
        nginx_log = (work / "nginx.log").read_text()

    certs = [describe(c) for c in seen["certs"]]
    assert seen["failures"] == [], seen["failures"][:5]
    assert len(certs) >= 3, f"certificates seen: {certs}\nlego: {lego_log[-3000:]}\nnginx: {nginx_log[-2000:]}"
    assert "CN = placeholder" in certs[0] or "CN=placeholder" in certs[0]
    for issued in certs[1:]:
        assert "Pebble Intermediate CA" in issued
        assert "DNS:chat.test" in issued and "DNS:docs.test" in issued
    assert len(set(certs)) == len(certs)  # each one new: issued, then renewed
    assert seen["ok"] >= 20
    assert "nginx reloaded" in nginx_log
