"""The rendered nginx.conf, loaded by a real nginx in front of stub replicas on 127.0.0.1."""
from __future__ import annotations

import contextlib
import gzip
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from websockets.sync.client import connect as ws_connect

from components.config import LoadBalancerSpec
from components.load_balancer import edge_settings
from components.render.nginx import Edge, NginxSettings, Site, Tls, Upstream, render_nginx_conf
from lbclient import hammer, request
from realservices import (Nginx, StubUpstream, free_port, loopback_conf, nginx_server, nginx_test,
                          require_binary, stub_upstream)

HEALTH = "/healthz"
# What a stack gets without any loadBalancer edge key.
DEFAULT_EDGE = edge_settings(LoadBalancerSpec(node="lb"))


def settings(prefix: Path, *, tls: Tls | None = None, body_mb: int = 25, edge: Edge = DEFAULT_EDGE,
             api_read_s: int = 60) -> NginxSettings:
    """Production-like ports (moved to loopback by loopback_conf); files under a private prefix."""
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    return NginxSettings(http_port=80, https_port=443, tls=tls, client_max_body_size_mb=body_mb,
                         health_path=HEALTH, proxy_read_timeout_s=600, api_read_timeout_s=api_read_s, max_fails=3,
                         fail_timeout_s=10, keepalive=16, pid_path=str(prefix / "nginx.pid"),
                         error_log=str(prefix / "error.log"), access_log=str(prefix / "access.log"),
                         temp_dir=str(prefix / "temp"), edge=edge)


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
def balancer(tmp_path: Path, replicas: dict[str, int], static: Path | None = None, **kw) -> Iterator[Balancer]:
    """Stub replicas per app (serving `static`'s build files) and nginx in front, all stopped afterwards."""
    require_binary("nginx")
    with contextlib.ExitStack() as stack:
        stubs = {app: [stack.enter_context(stub_upstream(f"{app}-{i}", static)) for i in range(n)]
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
    # Each upstream's shared memory zone must hold every server (nginx -t fails on one too small).
    "five-thousand-replicas": [Site("chat", "chat.example.com",
                                    tuple(Upstream(f"10.{1 + i // 250}.{i % 250}.10", 8080) for i in range(5000)))],
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


EDGE_VARIANTS = {
    "defaults": DEFAULT_EDGE,
    "behind-a-cdn": replace(DEFAULT_EDGE, trusted_proxies=("173.245.48.0/20", "2400:cb00::/32"),
                            real_ip_header="CF-Connecting-IP"),
    "no-cache-no-frame-no-hsts": replace(DEFAULT_EDGE, static_cache_max_mb=None, frame_options=None, hsts_max_age_s=0),
    "acme": replace(DEFAULT_EDGE, acme_webroot="/var/www/acme"),
}


@pytest.mark.parametrize("variant", sorted(EDGE_VARIANTS))
def test_every_edge_variant_passes_nginx_syntax_check(tmp_path: Path, variant: str) -> None:
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    s = settings(prefix, tls=self_signed(tmp_path), edge=EDGE_VARIANTS[variant])
    conf = render_nginx_conf(s, CONFIGS["several-apps"])
    (prefix / "nginx.conf").write_text(conf)
    nginx_test(require_binary("nginx"), prefix)
    assert ("proxy_cache_path" in conf) == (EDGE_VARIANTS[variant].static_cache_max_mb is not None)
    assert ("set_real_ip_from 2400:cb00::/32;" in conf) == (variant == "behind-a-cdn")


def test_production_config_moved_to_loopback_passes_nginx_syntax_check(tmp_path: Path) -> None:
    prod = NginxSettings(http_port=80, https_port=443, tls=Tls("/etc/nginx/tls/cert.pem", "/etc/nginx/tls/key.pem"),
                         client_max_body_size_mb=100, health_path=HEALTH, proxy_read_timeout_s=600, api_read_timeout_s=60,
                         max_fails=3, fail_timeout_s=10, keepalive=32, pid_path="/var/run/nginx.pid",
                         error_log="/dev/stderr", access_log="/dev/stdout", temp_dir="/var/cache/nginx",
                         edge=DEFAULT_EDGE)
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
                                    "fastcgi_temp_path", "uwsgi_temp_path", "scgi_temp_path", "ssl_certificate",
                                    "proxy_cache_path"))


def test_loopback_rewrite_refuses_an_unmapped_upstream() -> None:
    conf = render_nginx_conf(_pure_settings(), CONFIGS["one-upstream"])
    with pytest.raises(KeyError, match="10.0.0.1:8080"):
        loopback_conf(conf, {80: 18080, 443: 18443}, {}, {})


# --- pure rendering ---------------------------------------------------------------------------

def _pure_settings() -> NginxSettings:
    return NginxSettings(http_port=80, https_port=443, tls=None, client_max_body_size_mb=25,
                         health_path=HEALTH, proxy_read_timeout_s=600, api_read_timeout_s=60, max_fails=3, fail_timeout_s=10,
                         keepalive=32, pid_path="/var/run/nginx.pid", error_log="/dev/stderr",
                         access_log="/dev/stdout", temp_dir="/var/cache/nginx", edge=DEFAULT_EDGE)


def test_every_upstream_keeps_its_failure_counts_in_memory_shared_by_the_workers() -> None:
    conf = render_nginx_conf(_pure_settings(), CONFIGS["several-apps"])
    blocks = re.findall(r"^ *upstream (\S+) \{\n(.*?)^ *\}", conf, re.M | re.S)
    assert [name for name, _ in blocks] == ["app_chat", "app_research", "app_team_b"]
    for name, body in blocks:
        assert re.search(rf"^ +zone {re.escape(name)} \d+[km];$", body, re.M), body


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


API_READ_S = 2  # the test's short read timeout; its long one is 600 s


@contextlib.contextmanager
def black_hole() -> Iterator[socket.socket]:
    """A replica whose node vanished after the connection: the kernel accepts, nothing ever answers."""
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen(16)
        yield hole


def test_a_plain_request_to_a_vanished_replica_is_retried_on_another_after_the_short_timeout(
        tmp_path: Path) -> None:
    require_binary("nginx")
    with stub_upstream("chat-0") as live, black_hole() as hole:
        http_port = free_port()
        sites = [Site("chat", "chat.test", (Upstream("127.0.0.1", live.port),
                                            Upstream("127.0.0.1", hole.getsockname()[1])))]
        conf = loopback_conf(render_nginx_conf(settings(tmp_path, api_read_s=API_READ_S), sites),
                             {80: http_port, 443: free_port()}, {}, {})
        with nginx_server(conf, tmp_path / "nginx", http_port):
            # Client timeout 20 s: far below the long timeout (600 s), which main used for everything.
            replies = [request(http_port, "chat.test", f"/api/v1/chats/?page={i}") for i in range(4)]
        assert [r.status for r in replies] == [200] * 4
        assert {r.headers["x-upstream"] for r in replies} == {"chat-0"}
        assert live.stats()["requests"] == 4
        hole.setblocking(False)
        hole.accept()[0].close()   # nginx did send a request there first (else: BlockingIOError)


@pytest.mark.parametrize("path", ["/api/chat/completions?key=k", "/stream?key=k"])
def test_an_answer_streamed_where_open_webui_streams_may_pause_longer_than_the_short_timeout(
        tmp_path: Path, path: str) -> None:
    long_path = path.startswith("/api/chat/")
    with balancer(tmp_path, {"chat": 1}, api_read_s=API_READ_S) as b:
        conn = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30)
        conn.request("POST" if long_path else "GET", path, headers={"Host": "chat.test"})
        resp = conn.getresponse()
        first = resp.readline()
        time.sleep(API_READ_S + 2)   # the upstream's pause, not a wait for a condition
        request(b.stubs["chat"][0].port, "127.0.0.1", "/release?key=k")
        try:
            rest = resp.read()
        except http.client.IncompleteRead as cut:
            rest = cut.partial
        conn.close()
    assert first == b"first\n"
    # Anywhere else nginx ends the answer after the short timeout.
    assert (rest == b"last released\n") is long_path, rest


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


def test_forwarded_headers_reach_the_upstream_and_a_spoofed_client_address_does_not(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}) as b:
        echo = request(b.http_port, "chat.test", "/api/config", source="127.0.0.5",
                       headers={"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.8"}).json()["headers"]
    assert echo["host"] == "chat.test"
    # Open WebUI believes the first X-Forwarded-For address: only the connection's own may be there.
    assert echo["x-real-ip"] == "127.0.0.5"
    assert echo["x-forwarded-for"] == "127.0.0.5"
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


# --- the edge: limits, headers, client address ---------------------------------------------------

SIGNIN = "/api/v1/auths/signin"
SIGNUP = "/api/v1/auths/signup"
CREDENTIALS = b'{"email": "a@example.com", "password": "wrong"}'
JSON = {"Content-Type": "application/json"}


def test_the_eleventh_sign_in_from_one_address_within_a_minute_gets_429(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}) as b:
        stub = b.stubs["chat"][0]
        first_ten = [request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS, JSON, source="127.0.0.2").status
                     for _ in range(10)]
        seen_after_ten = stub.requests_seen()
        eleventh = request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS, JSON, source="127.0.0.2")
        # Sign-up, a trailing slash and an encoded path share the budget; another address has its own.
        signup = request(b.http_port, "chat.test", SIGNUP, "POST", CREDENTIALS, JSON, source="127.0.0.2")
        slash = request(b.http_port, "chat.test", SIGNIN + "/", "POST", CREDENTIALS, JSON, source="127.0.0.2")
        encoded = request(b.http_port, "chat.test", "/api/v1/auths/%73ignin", "POST", CREDENTIALS, JSON,
                          source="127.0.0.2")
        seen_after_rejections = stub.requests_seen()
        other = request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS, JSON, source="127.0.0.3")
    assert first_ten == [200] * 10
    assert (eleventh.status, signup.status, slash.status, encoded.status) == (429, 429, 429, 429)
    assert seen_after_rejections == seen_after_ten == 10
    assert other.status == 200


def _page_load(port: int, asset: str) -> list[int]:
    """What a browser asks for when it opens Open WebUI (signed in)."""
    paths = ["/", "/api/config", "/api/v1/auths/", asset, "/api/models", "/api/v1/users/user/settings",
             "/api/v1/chats/?page=1", "/api/v1/folders/", "/static/favicon.png", "/api/changelog"]
    return [request(port, "chat.test", p, source="127.0.0.2").status for p in paths]


def test_normal_page_loads_are_never_rate_limited(tmp_path: Path) -> None:
    asset = build_asset(tmp_path / "build")
    with balancer(tmp_path, {"chat": 2}, static=tmp_path / "build") as b:
        statuses = [s for _ in range(5) for s in _page_load(b.http_port, asset)]
    assert statuses == [200] * 50


def test_connections_beyond_the_per_address_limit_get_429(tmp_path: Path) -> None:
    with balancer(tmp_path, {"chat": 1}, edge=replace(DEFAULT_EDGE, connections_per_address=2)) as b:
        held = []
        for key in ("c1", "c2"):  # two streams in flight from 127.0.0.2
            conn = http.client.HTTPConnection("127.0.0.1", b.http_port, timeout=30, source_address=("127.0.0.2", 0))
            conn.request("GET", f"/stream?key={key}", headers={"Host": "chat.test"})
            assert conn.getresponse().readline() == b"first\n"
            held.append(conn)
        third = request(b.http_port, "chat.test", "/api/config", source="127.0.0.2")
        elsewhere = request(b.http_port, "chat.test", "/api/config", source="127.0.0.3")
        for key in ("c1", "c2"):
            request(b.stubs["chat"][0].port, "127.0.0.1", f"/release?key={key}")
        for conn in held:
            conn.close()
    assert (third.status, elsewhere.status) == (429, 200)


SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "strict-origin-when-cross-origin",
                    "x-frame-options": "SAMEORIGIN"}


def test_security_headers_on_every_answer_replacing_the_replicas_own(tmp_path: Path) -> None:
    asset = build_asset(tmp_path / "build")
    with balancer(tmp_path, {"chat": 1}, static=tmp_path / "build") as b:
        api = request(b.http_port, "chat.test", "/api/config?set_header=X-Frame-Options:DENY")
        page = request(b.http_port, "chat.test", "/")
        static = request(b.http_port, "chat.test", asset)
        limited = [request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS, JSON) for _ in range(11)][-1]
    assert limited.status == 429
    for reply in (api, page, static, limited):
        assert {k: reply.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS
        assert "strict-transport-security" not in reply.headers  # plain HTTP: HSTS would be ignored
    # http.client joins repeated headers with ", ": one value means the replica's DENY was dropped.
    assert api.headers["x-frame-options"] == "SAMEORIGIN"


def test_hsts_over_https(tmp_path: Path) -> None:
    tls = self_signed(tmp_path)
    with balancer(tmp_path, {"chat": 1}, tls=tls) as b:
        https = request(b.https_port, "chat.test", "/api/config", tls=True)
        limited = [request(b.https_port, "chat.test", SIGNIN, "POST", CREDENTIALS, JSON, tls=True)
                   for _ in range(11)][-1]
    assert https.headers["strict-transport-security"] == "max-age=31536000"
    assert limited.status == 429 and limited.headers["strict-transport-security"] == "max-age=31536000"
    assert {k: https.headers.get(k) for k in SECURITY_HEADERS} == SECURITY_HEADERS


def test_behind_a_trusted_proxy_the_client_is_the_address_it_forwards(tmp_path: Path) -> None:
    spoof = {"X-Forwarded-For": "203.0.113.7"}
    with balancer(tmp_path, {"chat": 1}, edge=replace(DEFAULT_EDGE, trusted_proxies=("127.0.0.2/32",))) as b:
        via_proxy = request(b.http_port, "chat.test", "/api/config", headers={
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}, source="127.0.0.2").json()["headers"]
        direct = request(b.http_port, "chat.test", "/api/config", headers=spoof, source="127.0.0.3").json()["headers"]
        # The rate limit counts the forwarded client, not the proxy all clients share.
        one_client = [request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS,
                              {**JSON, "X-Forwarded-For": "203.0.113.9"}, source="127.0.0.2").status
                      for _ in range(11)]
        another = request(b.http_port, "chat.test", SIGNIN, "POST", CREDENTIALS,
                          {**JSON, "X-Forwarded-For": "203.0.113.10"}, source="127.0.0.2")
    assert (via_proxy["x-forwarded-for"], via_proxy["x-real-ip"]) == ("203.0.113.9", "203.0.113.9")
    assert (direct["x-forwarded-for"], direct["x-real-ip"]) == ("127.0.0.3", "127.0.0.3")
    assert one_client == [200] * 10 + [429]
    assert another.status == 200


# --- immutable build assets cached at the LB -------------------------------------------------------

ASSET = "_app/immutable/chunks/B8x2kQ1z.js"  # the shape of SvelteKit's content-hashed build output


def build_asset(build: Path, source: Path | None = None) -> str:
    """A build directory as Open WebUI ships it, with one immutable file (copied from `source`, or
    generated); returns the file's URL path."""
    target = build / ASSET
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(source.read_bytes() if source else
                       b"".join(b"export const c%d=()=>'%d';\n" % (i, i * i) for i in range(2000)))
    return "/" + ASSET


def _assert_cached_and_gzipped(tmp_path: Path, build: Path, path: str) -> None:
    original = (build / path.lstrip("/")).read_bytes()
    with balancer(tmp_path, {"chat": 1}, static=build) as b:
        stub = b.stubs["chat"][0]
        before = stub.requests_seen()
        first = request(b.http_port, "chat.test", path)
        second = request(b.http_port, "chat.test", path)
        # The gzip variant (as browsers ask, in any spelling) is cached apart from the identity one.
        zipped = [request(b.http_port, "chat.test", path, headers={"Accept-Encoding": ae})
                  for ae in ("gzip, deflate, br, zstd", "gzip")]
        reached = stub.requests_seen() - before
    assert [r.status for r in (first, second, *zipped)] == [200] * 4
    assert [r.headers["x-cache-status"] for r in (first, second, *zipped)] == ["MISS", "HIT", "MISS", "HIT"]
    assert reached == 2
    assert first.body == second.body == original and "content-encoding" not in second.headers
    for reply in (second, *zipped):
        assert reply.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert reply.headers["vary"] == "Accept-Encoding"
    for reply in zipped:
        assert reply.headers["content-encoding"] == "gzip" and gzip.decompress(reply.body) == original
        assert len(reply.body) < len(original)


def test_an_immutable_asset_is_served_from_the_cache_the_second_time_and_gzipped(tmp_path: Path) -> None:
    build = tmp_path / "build"
    _assert_cached_and_gzipped(tmp_path, build, build_asset(build))


def test_a_real_open_webui_build_asset_is_cached(tmp_path: Path) -> None:
    """Needs Open WebUI's package (OPENWEBUI_VENV, default .cache/openwebui-venv): the suite that installs it."""
    venv = Path(os.environ.get("OPENWEBUI_VENV", ".cache/openwebui-venv"))
    chunks = sorted(venv.glob("lib/python3*/site-packages/open_webui/frontend/_app/immutable/entry/app.*.js"))
    if not chunks:
        if "OPENWEBUI_VENV" in os.environ:
            pytest.fail(f"no open_webui/frontend/_app/immutable/entry/app.*.js under {venv}")
        pytest.skip(f"Open WebUI is not installed at {venv} (set OPENWEBUI_VENV)")
    build = chunks[0].parents[3]
    _assert_cached_and_gzipped(tmp_path, build, "/" + str(chunks[0].relative_to(build)))


def test_api_auth_and_missing_assets_are_never_cached(tmp_path: Path) -> None:
    build_asset(tmp_path / "build")
    with balancer(tmp_path, {"chat": 1}, static=tmp_path / "build") as b:
        stub = b.stubs["chat"][0]
        before = stub.requests_seen()
        replies = [request(b.http_port, "chat.test", p, m, body)
                   for p, m, body in [("/api/config", "GET", None), ("/api/config", "GET", None),
                                      ("/api/v1/auths/", "GET", None), ("/api/v1/auths/", "GET", None),
                                      (SIGNIN, "POST", CREDENTIALS), (SIGNIN, "POST", CREDENTIALS),
                                      ("/_app/immutable/chunks/missing.js", "GET", None),
                                      ("/_app/immutable/chunks/missing.js", "GET", None)]]
        reached = stub.requests_seen() - before
    assert [r.status for r in replies] == [200] * 6 + [404, 404]
    assert reached == 8
    assert all("cache-control" not in r.headers for r in replies[:6])
    assert [r.headers.get("x-cache-status") for r in replies[6:]] == ["MISS", "MISS"]
