"""redis-server command line as Open WebUI's docs ask for websocket state."""
from __future__ import annotations

import shlex

from components.config.shared_services import Redis


def redis_server_args(spec: Redis) -> list[str]:
    """Arguments after `redis-server --requirepass "$REDIS_PASSWORD"`."""
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


def redis_server_command(spec: Redis) -> list[str]:
    """Container command: a shell, so the password is read from the (secret) environment."""
    return ["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" ' + shlex.join(redis_server_args(spec))]
