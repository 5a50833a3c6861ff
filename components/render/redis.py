"""redis-server's command line and its ACL file: one Redis user per app, nothing in argv.

Every app gets its own ACL user, limited to its own keys (`<REDIS_KEY_PREFIX>:*`), its own
pub/sub channels and the socket.io channels every Open WebUI shares (`socketio`, `socketio#*`:
Open WebUI 0.12.4 gives python-socketio no per-app channel, see the README's security section).
Passwords appear only as SHA-256 hashes (`#<hex>`), so the file reveals no password.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from components.config.shared_services import Redis

ACL_DIR = "/usr/local/etc/redis"            # a volume: the users step writes it, Redis reads it
ACL_PATH = f"{ACL_DIR}/users.acl"
ACL_UPLOAD = "/acl-new/users.acl"           # where the users step receives the rendered file
ADMIN_USER = "fleet-admin"
# python-socketio's default channel, and the per-room channels Open WebUI's manager adds to it.
SOCKETIO_CHANNELS = ("socketio", "socketio#*")
# What an app's user may not run, though Redis's categories would allow it:
# - @dangerous and @admin: FLUSHALL, FLUSHDB, KEYS, CONFIG, MONITOR, DEBUG, CLIENT KILL/LIST, SHUTDOWN,
#   ACL, INFO, SWAPDB, MIGRATE, RESTORE, SORT's BY/GET, replication;
# - listings the key and channel patterns do not filter: SCAN, RANDOMKEY, PUBSUB CHANNELS/NUMSUB;
# - pattern subscriptions (PSUBSCRIBE socketio#* would hear every app's rooms; Open WebUI never uses it);
# - server-wide script and function state (SCRIPT FLUSH/KILL, FUNCTION).
APP_DENIED = ("-@dangerous", "-@admin", "-scan", "-randomkey", "-pubsub", "-psubscribe", "-punsubscribe",
              "-function", "-script|flush", "-script|kill")


@dataclass(frozen=True)
class RedisAppUser:
    """One app's Redis identity: its ACL user, its password's SHA-256 and its key prefix."""
    user: str
    password_sha256: str
    key_prefix: str


def redis_key_prefix(app: str) -> str:
    """An app's REDIS_KEY_PREFIX: Open WebUI names every key and its own channels `<prefix>:...`."""
    return f"open-webui-{app}"


def redis_app_user(app: str) -> str:
    return f"app-{app}"


def acl_password_hash(password: str) -> str:
    """How an ACL file holds a password: its SHA-256, in hex."""
    return hashlib.sha256(password.encode()).hexdigest()


def app_acl_rule(app: RedisAppUser) -> str:
    channels = [f"&{channel}" for channel in (*SOCKETIO_CHANNELS, f"{app.key_prefix}:*")]
    return " ".join([f"user {app.user} on #{app.password_sha256} resetkeys ~{app.key_prefix}:*",
                     "resetchannels", *channels, "+@all", *APP_DENIED])


def redis_acl_file(admin_password_sha256: str, apps: Iterable[RedisAppUser]) -> str:
    """The ACL file: the default user off, an admin for health checks and operators, one user per app."""
    lines = ["user default off resetpass resetkeys resetchannels -@all",
             f"user {ADMIN_USER} on #{admin_password_sha256} ~* &* +@all"]
    lines += [app_acl_rule(app) for app in sorted(apps, key=lambda a: a.user)]
    return "\n".join(lines) + "\n"


def redis_server_args(spec: Redis) -> list[str]:
    """Arguments after `redis-server --aclfile ACL_PATH`."""
    args = [
        "--appendonly", "yes",                       # survive restarts with socket state
        # Never evict: websocket sessions and locks are keys; with maxmemory full, writes fail loudly.
        "--maxmemory-policy", "noeviction",
        "--maxclients", str(spec.maxclients),
        # Idle clients are closed (Open WebUI's clients reconnect on their own): without it,
        # connections of crashed replicas stay until maxclients is reached and logins fail.
        "--timeout", str(spec.timeout),
        "--tcp-keepalive", str(spec.tcp_keepalive),
        "--client-output-buffer-limit", f"pubsub {spec.pubsub_buffer_mb}mb {spec.pubsub_buffer_mb // 4}mb 60",
    ]
    if spec.maxmemory_mb is not None:
        args += ["--maxmemory", f"{spec.maxmemory_mb}mb"]
    return args


def redis_server_command(spec: Redis, acl_path: str = ACL_PATH) -> list[str]:
    """Container command: users and passwords come from the ACL file, so no secret is in argv."""
    return ["redis-server", "--aclfile", acl_path, *redis_server_args(spec)]


def redis_health_command(tls_args: Sequence[str] = ()) -> str:
    """Health check as the admin user; redis-cli reads its password from REDISCLI_AUTH. `tls_args`:
    redis-cli's TLS options when Redis listens on TLS only (components/render/tls.py)."""
    tls = "".join(f" {arg}" for arg in tls_args)
    return f"redis-cli{tls} --user {ADMIN_USER} --no-auth-warning ping | grep -q PONG"


def redis_users_script(host: str, port: int, tls_args: Sequence[str] = (), upload: str = ACL_UPLOAD,
                       acl_path: str = ACL_PATH) -> str:
    """The users step: install the rendered ACL file atomically, then make a running Redis load it
    (ACL LOAD swaps all users at once, or keeps the old ones if the file is bad). Redis that is not
    running yet reads the file when it starts. redis-cli reads the password from REDISCLI_AUTH."""
    tls = "".join(f" {arg}" for arg in tls_args)
    cli = f"redis-cli{tls} -h {host} -p {port} --user {ADMIN_USER} --no-auth-warning"
    return "\n".join([
        "set -eu",
        f"cp {upload} {acl_path}.new && chmod 0644 {acl_path}.new && mv -f {acl_path}.new {acl_path}",
        f"reply=$({cli} ping 2>&1 || true)",
        'case "$reply" in',
        '  *"Could not connect"*) exit 0 ;;',  # the first deploy: Redis starts after this step
        "esac",
        f"loaded=$({cli} ACL LOAD 2>&1 || true)",
        '[ "$loaded" = OK ] || { echo "redis: ACL LOAD failed: $loaded" >&2; exit 1; }',
    ]) + "\n"
