"""The rendered nginx.conf, loaded by a real nginx in front of stub replicas on 127.0.0.1."""
from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from components.render.nginx import NginxSettings, Site, Tls, Upstream, render_nginx_conf
from lbclient import hammer, request
from realservices import (Nginx, StubUpstream, free_port, loopback_conf, nginx_server, nginx_test,
                          require_binary, stub_upstream)

HEALTH = "/healthz"


def settings(prefix: Path, *, tls: Tls | None = None, body_mb: int = 25) -> NginxSettings:
    """Production-like ports (moved to loopback by loopback_conf); files under a private prefix."""
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    return NginxSettings(http_port=80, https_port=443, tls=tls, client_max_body_size_mb=body_mb,
                         health_path=HEALTH, proxy_read_timeout_s=600, max_fails=3, fail_timeout_s=10,
                         keepalive=16, pid_path=str(prefix / "nginx.pid"),
                         error_log=str(prefix / "error.log"), access_log=str(prefix / "access.log"),
                         temp_dir=str(prefix / "temp"))


def site(app: str, stubs: list[StubUpstream]) -> Site:
    return Site(app, f"{app}.test", tuple(Upstream("127.0.0.1", s.port) for s in stubs))


@dataclass
class Balancer:
    nginx: Nginx
    http_port: int
    https_port: int
    stubs: dict[str, list[StubUpstream]]

    def all_stubs(self) -> list[StubUpstream]:
        return [s for stubs in self.stubs.values() for s in stubs]


def loopback_render(s: NginxSettings, stubs: dict[str, list[StubUpstream]], http_port: int,
                    https_port: int) -> str:
    conf = render_nginx_conf(s, [site(app, replicas) for app, replicas in stubs.items()])
    return loopback_conf(conf, {80: http_port, 443: https_port}, {}, {})


@contextlib.contextmanager
def balancer(tmp_path: Path, replicas: dict[str, int], **kw) -> Iterator[Balancer]:
    """Stub replicas per app and nginx in front of them, all stopped afterwards."""
    require_binary("nginx")
    with contextlib.ExitStack() as stack:
        stubs = {app: [stack.enter_context(stub_upstream(f"{app}-{i}")) for i in range(n)]
                 for app, n in replicas.items()}
        http_port, https_port = free_port(), free_port()
        conf = loopback_render(settings(tmp_path, **kw), stubs, http_port, https_port)
        nginx = stack.enter_context(nginx_server(conf, tmp_path / "nginx", http_port))
        yield Balancer(nginx, http_port, https_port, stubs)


# --- nginx -t on rendered configs -------------------------------------------------------------

def self_signed(directory: Path) -> Tls:
    """A certificate for *.test, made with the openssl CLI."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=chat.test",
                    "-addext", "subjectAltName=DNS:chat.test,DNS:*.test"],
                   check=True, capture_output=True)
    return Tls(str(cert), str(key))


def node_upstreams(count: int, node_offset: int = 0) -> tuple[Upstream, ...]:
    return tuple(Upstream(f"10.0.{node_offset}.{i + 1}", 8080 + i % 3) for i in range(count))


CONFIGS = {
    "several-apps": [Site(a, f"{a}.example.com", node_upstreams(2, k))
                     for k, a in enumerate(["chat", "research", "team-b"])],
    "one-upstream": [Site("chat", "chat.example.com", node_upstreams(1))],
    "many-upstreams": [Site("chat", "chat.example.com", node_upstreams(40)),
                       Site("docs", "docs.example.com", node_upstreams(25, 1))],
}


@pytest.mark.parametrize("tls_on", [False, True], ids=["tls-off", "tls-on"])
@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_rendered_config_passes_nginx_syntax_check(tmp_path: Path, name: str, tls_on: bool) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    s = settings(prefix, tls=self_signed(tmp_path) if tls_on else None)
    conf = render_nginx_conf(s, CONFIGS[name])
    (prefix / "nginx.conf").write_text(conf)
    nginx_test(require_binary("nginx"), prefix)
    for site_ in CONFIGS[name]:
        for u in site_.upstreams:
            assert f"server {u.address}:{u.port} " in conf


def test_production_config_moved_to_loopback_passes_nginx_syntax_check(tmp_path: Path) -> None:
    prod = NginxSettings(http_port=80, https_port=443, tls=Tls("/etc/nginx/tls/cert.pem", "/etc/nginx/tls/key.pem"),
                         client_max_body_size_mb=100, health_path=HEALTH, proxy_read_timeout_s=600,
                         max_fails=3, fail_timeout_s=10, keepalive=32, pid_path="/var/run/nginx.pid",
                         error_log="/dev/stderr", access_log="/dev/stdout", temp_dir="/var/cache/nginx")
    sites = CONFIGS["several-apps"]
    conf = render_nginx_conf(prod, sites)
    prefix = tmp_path / "nginx"
    (prefix / "temp").mkdir(parents=True)
    tls = self_signed(tmp_path)
    ports = {(u.address, u.port): 20000 + i for i, u in enumerate(u for s in sites for u in s.upstreams)}
    moved = loopback_conf(conf, {80: 18080, 443: 18443}, ports,
                          {"/var/run": str(prefix), "/var/cache/nginx": str(prefix / "temp"),
                           "/etc/nginx/tls": str(Path(tls.certificate_path).parent)})
    (prefix / "nginx.conf").write_text(moved)
    nginx_test(require_binary("nginx"), prefix)
    assert "10.0." not in moved and "/var/" not in moved
    assert moved.count("listen 127.0.0.1:") == conf.count("listen ")
    # Only listen, upstream server and path lines differ.
    assert [l for l in moved.splitlines() if not _rewritten(l)] == [l for l in conf.splitlines() if not _rewritten(l)]


def _rewritten(line: str) -> bool:
    return line.strip().startswith(("listen ", "server 1", "pid ", "client_body_temp_path", "proxy_temp_path",
                                    "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path", "ssl_certificate"))


def test_loopback_rewrite_refuses_an_unmapped_upstream() -> None:
    conf = render_nginx_conf(_pure_settings(), CONFIGS["one-upstream"])
    with pytest.raises(KeyError, match="10.0.0.1:8080"):
        loopback_conf(conf, {80: 18080, 443: 18443}, {}, {})


# --- pure rendering ---------------------------------------------------------------------------

def _pure_settings() -> NginxSettings:
    return NginxSettings(http_port=80, https_port=443, tls=None, client_max_body_size_mb=25,
                         health_path=HEALTH, proxy_read_timeout_s=600, max_fails=3, fail_timeout_s=10,
                         keepalive=32, pid_path="/var/run/nginx.pid", error_log="/dev/stderr",
                         access_log="/dev/stdout", temp_dir="/var/cache/nginx")


def test_output_does_not_depend_on_the_order_of_sites_or_replicas() -> None:
    sites = CONFIGS["several-apps"]
    shuffled = [Site(s.app, s.hostname, tuple(reversed(s.upstreams))) for s in reversed(sites)]
    assert render_nginx_conf(_pure_settings(), sites) == render_nginx_conf(_pure_settings(), shuffled)


def test_a_site_without_replicas_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="no upstreams"):
        render_nginx_conf(_pure_settings(), [Site("chat", "chat.example.com", ())])


# --- behaviour under a real nginx ----------------------------------------------------------------

def test_requests_spread_across_every_replica_of_the_app_named_by_host(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 3, "docs": 2}) as b:
        chat, _ = hammer(b.http_port, "chat.test", 60, 30, workers=1)
        docs, _ = hammer(b.http_port, "docs.test", 40, 30, workers=1)
    assert set(chat) == {"chat-0", "chat-1", "chat-2"}
    assert set(docs) == {"docs-0", "docs-1"}
    assert sum(chat.values()) == 60 and sum(docs.values()) == 40


def test_unknown_host_reaches_no_app_and_health_answers(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 2}) as b:
        with pytest.raises(http.client.RemoteDisconnected):  # 444: closed without an answer
            request(b.http_port, "evil.test", "/api/chats")
        health = request(b.http_port, "127.0.0.1", HEALTH)
        seen = [s.requests_seen() for s in b.all_stubs()]
    assert (health.status, health.body) == (200, b"ok\n")
    assert seen == [0, 0]


def test_killing_one_of_three_replicas_fails_no_client_request(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 3}) as b:
        victim = b.stubs["chat"][1]
        answered, failures = hammer(b.http_port, "chat.test", 300, 30, at={100: victim.kill})
    assert failures == []
    assert sum(answered.values()) >= 300
    assert answered["chat-1"] > 0  # the victim served traffic before it died
    assert answered["chat-0"] + answered["chat-2"] >= 200 - 8  # all but in-flight ones went to survivors


def test_reload_with_one_more_replica_fails_no_request_and_the_new_one_gets_traffic(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 2}) as b, stub_upstream("chat-new") as new:
        grown = loopback_render(settings(tmp_path), {"chat": [*b.stubs["chat"], new]}, b.http_port, b.https_port)
        answered, failures = hammer(b.http_port, "chat.test", 300, 60, at={100: lambda: b.nginx.reload(grown)},
                                    until=lambda seen: seen["chat-new"] > 0)
        new_seen = new.requests_seen()
    assert failures == []
    assert sum(answered.values()) >= 300
    assert answered["chat-new"] > 0 and new_seen == answered["chat-new"]


def test_websocket_handshake_and_messages_pass_through(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 2}) as b:
        sock = socket.create_connection(("127.0.0.1", b.http_port), timeout=10)
        with ws_connect(f"ws://chat.test:{b.http_port}/ws/socket.io/?EIO=4&transport=websocket",
                        sock=sock, open_timeout=10, close_timeout=5) as ws:
            ws.send("hello")
            first = ws.recv(timeout=10)
            ws.send("again")
            second = ws.recv(timeout=10)
    upstream = first.split(":")[0]
    assert upstream in {"chat-0", "chat-1"}
    assert (first, second) == (f"{upstream}:hello", f"{upstream}:again")


def test_streamed_response_reaches_the_client_before_the_upstream_finishes(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}) as b:
        conn = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
        conn.request("GET", "/stream?key=s1", headers={"Host": "chat.test"})
        resp = conn.getresponse()
        first = resp.readline()
        # The upstream sends its last chunk only after this release (or after its own 25 s bound).
        release = request(b.stubs["chat"][0].port, "127.0.0.1", "/release?key=s1")
        rest = resp.read()
        conn.close()
    assert release.status == 200
    assert (first, rest) == (b"first\n", b"last released\n")


def test_upload_at_the_body_limit_passes_and_one_byte_more_is_refused(tmp_path: Path) -> None:
    limit = 1024 * 1024  # client_max_body_size 1m
    with balancer(tmp_path, {"chat": 1}, body_mb=1) as b:
        at_limit = request(b.http_port, "chat.test", "/api/v1/files/", "POST", b"x" * limit)
        seen_before = b.stubs["chat"][0].requests_seen()
        over = request(b.http_port, "chat.test", "/api/v1/files/", "POST", b"x" * (limit + 1))
        seen_after = b.stubs["chat"][0].requests_seen()
    assert at_limit.status == 200 and at_limit.json()["body_bytes"] == limit
    assert over.status == 413
    assert seen_after == seen_before


def test_forwarded_headers_reach_the_upstream(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}) as b:
        echo = request(b.http_port, "chat.test", "/api/config",
                       headers={"X-Forwarded-For": "203.0.113.7"}).json()["headers"]
    assert echo["host"] == "chat.test"
    assert echo["x-real-ip"] == "127.0.0.1"
    assert echo["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert echo["x-forwarded-proto"] == "http"
    assert echo["x-forwarded-host"] == "chat.test"


def test_plain_requests_reuse_upstream_connections(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}) as b:
        stub = b.stubs["chat"][0]
        before = stub.stats()["connections"]
        hammer(b.http_port, "chat.test", 20, 30, workers=1)
        after = stub.stats()["connections"] - 1  # less the second /_stats connection
        echo = request(b.http_port, "chat.test", "/api/config").json()["headers"]
    assert after - before < 10  # without keepalive it would be one connection per request: 20
    assert "connection" not in echo and "upgrade" not in echo


def test_tls_site_serves_https_and_redirects_http_while_health_stays_on_http(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    with balancer(tmp_path, {"chat": 1}, tls=tls) as b:
        redirect = request(b.http_port, "chat.test", "/c/1?x=2")
        health = request(b.http_port, "127.0.0.1", HEALTH)
        context = ssl.create_default_context(cafile=tls.certificate_path)
        sock = socket.create_connection(("127.0.0.1", b.https_port), timeout=10)
        conn = http.client.HTTPSConnection("chat.test", b.https_port, context=context, timeout=10)
        conn.sock = context.wrap_socket(sock, server_hostname="chat.test")
        conn.request("GET", "/api/config")
        resp = conn.getresponse()
        echo = json.loads(resp.read())
        conn.close()
    assert (redirect.status, redirect.headers["location"]) == (301, "https://chat.test/c/1?x=2")
    assert health.status == 200
    assert resp.status == 200 and echo["headers"]["x-forwarded-proto"] == "https"
