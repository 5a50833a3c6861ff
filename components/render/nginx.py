"""The load balancer's whole nginx.conf, as text, from typed settings and the apps it fronts.

Follows Open WebUI's reverse-proxy guidance: upstream keepalive, websockets at /ws/socket.io,
no buffering for streamed answers, retries on connection errors only. At the edge: a per-address
rate limit on sign-in/sign-up, a per-address connection limit, security headers, the client address
rebuilt from the connection (or from trusted proxies), and the immutable build assets cached and gzipped.
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
# The upstream's shared memory: without it each worker keeps its own max_fails count and least_conn
# counts, so every worker sends its own failed attempts to a dead replica. A constant, so adding a
# replica changes only the server list: nginx 1.22 uses about 0.7 KB per server, so 4 MB holds 5,000
# (6,500 do not fit, and nginx -t refuses a zone too small); the config allows 4,000 an app.
UPSTREAM_ZONE = "4m"
MAX_UPSTREAM_SERVERS = 4000

# Open WebUI 0.12.4 (routers/auths.py under /api/v1/auths): password sign-in, sign-up, LDAP sign-in.
# Matched on nginx's normalised URI, so //signin or %73ignin are limited too.
AUTH_LOCATION = r"~ ^/api/v1/auths/(signin|signup|ldap)/?$"
# Where Open WebUI 0.12.4 answers slowly or for long on purpose, kept at proxy_read_timeout_s: socket.io
# (mounted at /ws), chat completions streamed or run through pipelines (main.py: /api/chat/*,
# /api/v1/chat/completions), the model proxies (routers/ollama.py, openai.py: streamed answers, pulls), and
# the routers that embed, transcribe or generate (files, knowledge, retrieval, audio, images, tasks,
# pipelines). Everything else gets api_read_timeout_s, so a request to a vanished replica is retried or
# fails that soon.
LONG_LOCATION = (r"~ ^/(ws/|api/chat/|api/v1/chat/|ollama/|openai/"
                 r"|api/v1/(files|knowledge|retrieval|audio|images|tasks|pipelines)/)")
# SvelteKit's content-hashed build output (open_webui/frontend/_app/immutable/): a name never changes content.
IMMUTABLE_PREFIX = "/_app/immutable/"
STATIC_CACHE_ZONE = "static_assets"
STATIC_CACHE_KEYS_MB = 10  # key zone: ~80,000 cached files
STATIC_MAX_AGE_S = 31536000  # a year, and `immutable`: browsers never ask again
GZIP_TYPES = ("text/css", "text/javascript", "application/javascript", "application/json",
              "image/svg+xml", "application/wasm")

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
class Edge:
    """What the load balancer does for every app at the edge (loadBalancer.* keys in the config)."""

    auth_per_minute: int
    auth_burst: int  # attempts one address may make at once before it is held to auth_per_minute
    connections_per_address: int
    hsts_max_age_s: int  # sent over HTTPS only; 0: no header
    referrer_policy: str
    frame_options: str | None  # None: no header
    # CIDRs of proxies (a CDN) in front of the LB whose real_ip_header is believed; else the connection's address.
    trusted_proxies: tuple[str, ...]
    real_ip_header: str
    static_cache_max_mb: int | None  # None: immutable assets are not cached
    # Directory the ACME client writes HTTP-01 tokens to; served at /.well-known/acme-challenge/.
    acme_webroot: str | None


@dataclass(frozen=True)
class NginxSettings:
    http_port: int
    https_port: int
    tls: Tls | None
    client_max_body_size_mb: int
    health_path: str
    proxy_read_timeout_s: int  # LONG_LOCATION's
    api_read_timeout_s: int    # every other location's
    max_fails: int
    fail_timeout_s: int
    keepalive: int
    pid_path: str
    error_log: str
    access_log: str
    # An existing directory: nginx creates its temp dirs in it at start-up (compiled-in ones need root).
    temp_dir: str
    edge: Edge


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


def _proxy_headers() -> str:
    """Every header the replicas get; a location that sets one more must repeat them all."""
    return """\
proxy_set_header Upgrade $http_upgrade;
proxy_set_header Connection $connection_upgrade;
proxy_set_header Host $host;
# Rebuilt, never appended to: Open WebUI (uvicorn --forwarded-allow-ips '*') believes the first
# address, so a client's own X-Forwarded-For must not reach it.
proxy_set_header X-Real-IP $remote_addr;
proxy_set_header X-Forwarded-For $remote_addr;
proxy_set_header X-Forwarded-Proto $scheme;
proxy_set_header X-Forwarded-Host $host;"""


def _hidden_upstream_headers(e: Edge) -> list[str]:
    """Headers the LB sets itself; the replica's copy is dropped so a response has exactly one."""
    names = ["X-Content-Type-Options", "Referrer-Policy", "Strict-Transport-Security"]
    if e.frame_options:
        names.append("X-Frame-Options")
    return names


def _security_headers(e: Edge, tls: bool) -> str:
    lines = ["add_header X-Content-Type-Options nosniff always;",
             f"add_header Referrer-Policy {e.referrer_policy} always;"]
    if e.frame_options:
        lines.append(f"add_header X-Frame-Options {e.frame_options} always;")
    if tls and e.hsts_max_age_s:
        lines.append(f'add_header Strict-Transport-Security "max-age={e.hsts_max_age_s}" always;')
    return "\n".join(lines)


def _client_address(e: Edge) -> str:
    if not e.trusted_proxies:
        return "# No trusted proxies: the client is the address of the connection."
    lines = ["# Behind the trusted proxies, the client is the last untrusted address in their header."]
    lines += [f"set_real_ip_from {cidr};" for cidr in sorted(e.trusted_proxies)]
    lines += [f"real_ip_header {e.real_ip_header};", "real_ip_recursive on;"]
    return "\n".join(lines)


def _limits(e: Edge, t: str) -> str:
    cache = ""
    if e.static_cache_max_mb is not None:
        cache = f"""

# Immutable build assets only (see the {IMMUTABLE_PREFIX} location); bounded on disk and in keys.
proxy_cache_path {t}/{STATIC_CACHE_ZONE} levels=1:2 keys_zone={STATIC_CACHE_ZONE}:{STATIC_CACHE_KEYS_MB}m \
max_size={e.static_cache_max_mb}m inactive=30d use_temp_path=off;
# Two variants per file at most: gzip (compressed once, by the replica) or identity.
map $http_accept_encoding $static_encoding {{
    default "";
    "~*gzip" gzip;
}}"""
    return f"""\
{_client_address(e)}

# Per client address: sign-in/sign-up attempts (see the auth location) and open connections.
limit_req_zone $binary_remote_addr zone=auth:10m rate={e.auth_per_minute}r/m;
limit_conn_zone $binary_remote_addr zone=per_address:10m;
limit_conn per_address {e.connections_per_address};
limit_req_status 429;
limit_conn_status 429;{cache}"""


def _main(s: NginxSettings, http_body: str) -> str:
    t = s.temp_dir
    hidden = "\n".join(f"    proxy_hide_header {h};" for h in _hidden_upstream_headers(s.edge))
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

{_indent(_limits(s.edge, t))}

    # Upgrade only when the client asks (socket.io at /ws/socket.io); otherwise an empty
    # Connection header keeps the upstream connection alive for reuse.
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}

    # Set once here: any proxy_set_header in a location would drop all of these.
    proxy_http_version 1.1;
{_indent(_proxy_headers())}
{hidden}

    # Streamed chat answers and uploads pass through as they come. Nothing but the immutable
    # assets is cached, so /api/, /oauth/ and /ws/ never are.
    proxy_buffering off;
    proxy_request_buffering off;
    proxy_cache off;
    proxy_read_timeout {s.api_read_timeout_s}s;
    proxy_send_timeout {s.api_read_timeout_s}s;

    # Retry on another replica only if this one could not be reached or timed out; nginx never
    # re-sends a non-idempotent request (POST) that it has already passed on.
    proxy_connect_timeout {CONNECT_TIMEOUT_S}s;
    proxy_next_upstream error timeout;
    # Time for one read timeout on a vanished replica, then the others.
    proxy_next_upstream_timeout {s.api_read_timeout_s + NEXT_UPSTREAM_TIMEOUT_S}s;

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
    zone {upstream_name(site.app)} {UPSTREAM_ZONE};
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


def _site_locations(site: Site, s: NginxSettings, tls: bool) -> str:
    e, upstream = s.edge, upstream_name(site.app)
    proxy = f"proxy_pass http://{upstream};\nproxy_next_upstream_tries {NEXT_UPSTREAM_TRIES};"
    blocks = [f"""\
{_security_headers(e, tls)}

location / {{
{_indent(proxy)}
}}""", f"""\
location {LONG_LOCATION} {{
    proxy_read_timeout {s.proxy_read_timeout_s}s;
    proxy_send_timeout {s.proxy_read_timeout_s}s;
{_indent(proxy)}
}}""", f"""\
location {AUTH_LOCATION} {{
    # nginx's burst is what may exceed the rate: the first attempt plus burst-1 more at once.
    limit_req zone=auth burst={e.auth_burst - 1} nodelay;
{_indent(proxy)}
}}"""]
    if e.static_cache_max_mb is not None:
        hidden = "\n".join(f"proxy_hide_header {h};" for h in ["Cache-Control", "Expires", "Vary",
                                                               *_hidden_upstream_headers(e)])
        gzip_types = " ".join(GZIP_TYPES)
        blocks.append(f"""\
location ^~ {IMMUTABLE_PREFIX} {{
    proxy_pass http://{upstream};
    # In a rolling upgrade a new build's file exists on some replicas only.
    proxy_next_upstream error timeout http_404;
    proxy_next_upstream_tries {NEXT_UPSTREAM_TRIES};
    proxy_buffering on;  # nginx caches buffered responses only
    proxy_cache {STATIC_CACHE_ZONE};
    proxy_cache_key $proxy_host$request_uri|$static_encoding;
    proxy_cache_valid 200 30d;
    proxy_cache_lock on;
    proxy_cache_use_stale error timeout updating;
    proxy_ignore_headers Cache-Control Expires Vary;  # the key holds the only variation
{_indent(_proxy_headers())}
    proxy_set_header Accept-Encoding $static_encoding;
{_indent(hidden)}
    # A replica that did not compress (ENABLE_COMPRESSION_MIDDLEWARE=false): nginx does, per request.
    gzip on;
    gzip_proxied any;
    gzip_min_length 1024;
    gzip_types {gzip_types};
    add_header Cache-Control "public, max-age={STATIC_MAX_AGE_S}, immutable";
    add_header Vary Accept-Encoding;
    add_header X-Cache-Status $upstream_cache_status always;
{_indent(_security_headers(e, tls))}
}}""")
    return "\n\n".join(blocks)


def _acme_location(e: Edge) -> str:
    """HTTP-01 tokens, answered on plain HTTP before any redirect."""
    if e.acme_webroot is None:
        return ""
    return f"""
location ^~ /.well-known/acme-challenge/ {{
    root {e.acme_webroot};
    default_type text/plain;
}}"""


def _site_servers(site: Site, s: NginxSettings) -> list[str]:
    if s.tls is None:
        return [f"""\
server {{
    listen {s.http_port};
    server_name {site.hostname};
{_indent(_acme_location(s.edge))}

{_indent(_site_locations(site, s, tls=False))}
}}"""]
    port = "" if s.https_port == 443 else f":{s.https_port}"
    return [f"""\
server {{
    listen {s.http_port};
    server_name {site.hostname};
{_indent(_acme_location(s.edge))}

    location / {{
        return 301 https://$host{port}$request_uri;
    }}
}}""", f"""\
server {{
    listen {s.https_port} ssl http2;
    server_name {site.hostname};
    ssl_certificate {s.tls.certificate_path};
    ssl_certificate_key {s.tls.key_path};

{_indent(_site_locations(site, s, tls=True))}
}}"""]
