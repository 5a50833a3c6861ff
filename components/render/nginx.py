"""The load balancer's whole nginx.conf, as text, from typed settings and the apps it fronts.

Follows Open WebUI's reverse-proxy guidance: upstream keepalive, websockets at /ws/socket.io,
no buffering for streamed answers, retries on connection errors only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fleet_backup.settings import APP_NAME

# Not user config: a dead replica must be skipped fast, and one request must not wander forever.
CONNECT_TIMEOUT_S = 3
NEXT_UPSTREAM_TIMEOUT_S = 15
# A constant, not the replica count, so adding a replica changes only the upstream list
# (nginx tries each server at most once anyway).
NEXT_UPSTREAM_TRIES = 3
KEEPALIVE_TIMEOUT_S = 60
KEEPALIVE_REQUESTS = 1000


@dataclass(frozen=True)
class Upstream:
    """One Open WebUI replica as the load balancer reaches it."""

    address: str
    port: int


@dataclass(frozen=True)
class Site:
    """One app (tenant): its public hostname and every replica serving it."""

    app: str
    hostname: str
    upstreams: tuple[Upstream, ...]


@dataclass(frozen=True)
class Tls:
    certificate_path: str
    key_path: str


@dataclass(frozen=True)
class NginxSettings:
    http_port: int
    https_port: int
    tls: Tls | None
    client_max_body_size_mb: int
    health_path: str
    proxy_read_timeout_s: int
    max_fails: int
    fail_timeout_s: int
    keepalive: int
    pid_path: str
    error_log: str
    access_log: str
    # An existing directory: nginx creates its temp dirs in it at start-up (compiled-in ones need root).
    temp_dir: str


def render_nginx_conf(settings: NginxSettings, sites: Sequence[Site]) -> str:
    """The complete nginx.conf; sites and replicas are sorted so the text is stable to diff."""
    ordered = sorted(sites, key=lambda s: s.app)
    _check_invariants(ordered)
    blocks = [_upstream_block(site, settings) for site in ordered]
    blocks.append(_default_server(settings))
    for site in ordered:
        blocks.extend(_site_servers(site, settings))
    return _main(settings, "\n\n".join(blocks))


def upstream_name(app: str) -> str:
    return f"app_{app.replace('-', '_')}"


def _check_invariants(sites: Sequence[Site]) -> None:
    apps = [s.app for s in sites]
    hostnames = [s.hostname for s in sites]
    if len(set(apps)) != len(apps) or len(set(hostnames)) != len(hostnames):
        raise ValueError(f"apps and hostnames must be unique: {apps} {hostnames}")
    for site in sites:
        if not APP_NAME.fullmatch(site.app):
            raise ValueError(f"app name {site.app!r} does not match {APP_NAME.pattern}")
        if not site.upstreams:
            raise ValueError(f"site {site.app!r} has no upstreams")
        if len(set(site.upstreams)) != len(site.upstreams):
            raise ValueError(f"site {site.app!r} lists an upstream twice: {site.upstreams}")


def _indent(text: str, levels: int = 1) -> str:
    pad = "    " * levels
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _main(s: NginxSettings, http_body: str) -> str:
    t = s.temp_dir
    return f"""\
# Rendered by openwebui-fleet (components/render/nginx.py): change the stack config, not this file.
worker_processes auto;
pid {s.pid_path};
error_log {s.error_log} warn;

events {{
    worker_connections 4096;
}}

http {{
    default_type application/octet-stream;
    access_log {s.access_log};
    server_tokens off;
    tcp_nodelay on;
    keepalive_timeout 65s;
    client_max_body_size {s.client_max_body_size_mb}m;

    client_body_temp_path {t}/client_body;
    proxy_temp_path {t}/proxy;
    fastcgi_temp_path {t}/fastcgi;
    uwsgi_temp_path {t}/uwsgi;
    scgi_temp_path {t}/scgi;

    # Upgrade only when the client asks (socket.io at /ws/socket.io); otherwise an empty
    # Connection header keeps the upstream connection alive for reuse.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    # Set once here: any proxy_set_header in a location would drop all of these.
    proxy_http_version 1.1;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $connection_upgrade;
    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;

    # Streamed chat answers and uploads pass through as they come. Nothing is cached, so
    # /api/v1/auths/, /oauth/ and /ws/ are never cached either.
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_cache off;
    proxy_read_timeout {s.proxy_read_timeout_s}s;
    proxy_send_timeout {s.proxy_read_timeout_s}s;

    # Retry on another replica only if this one could not be reached or timed out; nginx never
    # re-sends a non-idempotent request (POST) that it has already passed on.
    proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
    proxy_next_upstream error timeout;
    proxy_next_upstream_timeout {NEXT_UPSTREAM_TIMEOUT_S}s;

{_indent(http_body)}
}}
"""


def _upstream_block(site: Site, s: NginxSettings) -> str:
    servers = "\n".join(
        f"    server {u.address}:{u.port} max_fails={s.max_fails} fail_timeout={s.fail_timeout_s}s;"
        for u in sorted(site.upstreams, key=lambda u: (u.address, u.port))
    )
    return f"""\
upstream {upstream_name(site.app)} {{
    least_conn;
{servers}
    keepalive {s.keepalive};
    keepalive_timeout {KEEPALIVE_TIMEOUT_S}s;
    keepalive_requests {KEEPALIVE_REQUESTS};
}}"""


def _health_location(s: NginxSettings) -> str:
    return f"""\
location = {s.health_path} {{
    access_log off;
    default_type text/plain;
    return 200 "ok\\n";
}}"""


def _default_server(s: NginxSettings) -> str:
    """Unknown hosts get no answer at all (444); the health endpoint answers on plain HTTP."""
    tls = ""
    if s.tls:
        tls = f"""
listen {s.https_port} ssl http2 default_server;
# Unknown server names fail the TLS handshake instead of seeing some app's certificate.
ssl_reject_handshake on;"""
    return f"""\
server {{
    listen {s.http_port} default_server;{_indent(tls)}
    server_name _;

{_indent(_health_location(s))}

    location / {{
        return 444;
    }}
}}"""


def _site_servers(site: Site, s: NginxSettings) -> list[str]:
    proxy = f"""\
location / {{
    proxy_pass http://{upstream_name(site.app)};
    proxy_next_upstream_tries {NEXT_UPSTREAM_TRIES};
}}"""
    if s.tls is None:
        return [f"""\
server {{
    listen {s.http_port};
    server_name {site.hostname};

{_indent(proxy)}
}}"""]
    port = "" if s.https_port == 443 else f":{s.https_port}"
    return [f"""\
server {{
    listen {s.http_port};
    server_name {site.hostname};

    location / {{
        return 301 https://$host{port}$request_uri;
    }}
}}""", f"""\
server {{
    listen {s.https_port} ssl http2;
    server_name {site.hostname};
    ssl_certificate {s.tls.certificate_path};
    ssl_certificate_key {s.tls.key_path};

{_indent(proxy)}
}}"""]
