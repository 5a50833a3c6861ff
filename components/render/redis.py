"""redis-server command line as Open WebUI's docs ask for websocket state."""
from __future__ import annotations

import shlex

from components.config.shared_services import Redis


def redis_server_args(spec: Redis) -> list[str]:
    """Arguments after `redis-server --requirepass "$REDIS_PASSWORD"`."""
    return [
        "--appendonly", "yes",                       # survive restarts with socket state
        "--maxmemory-policy", "noeviction",          # eviction would drop websocket sessions
        "--maxclients", str(spec.maxclients),
        "--timeout", "0",                            # websocket clients idle for long
        "--tcp-keepalive", "60",
        "--client-output-buffer-limit", f"pubsub {spec.pubsub_buffer_mb}mb {spec.pubsub_buffer_mb // 4}mb 60",
    ]


def redis_server_command(spec: Redis) -> list[str]:
    """Container command: a shell, so the password is read from the (secret) environment."""
    return ["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" ' + shlex.join(redis_server_args(spec))]
