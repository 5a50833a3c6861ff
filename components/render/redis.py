"""redis-server command line as Open WebUI's docs ask for websocket state."""
from __future__ import annotations

from components.config import Redis


def redis_server_args(spec: Redis) -> list[str]:
    """Arguments after `redis-server`; the password is read from $REDIS_PASSWORD by the shell."""
    return [
        "--requirepass", '"$REDIS_PASSWORD"',
        "--appendonly", "yes",                       # survive restarts with socket state
        "--maxmemory-policy", "noeviction",          # eviction would drop websocket sessions
        "--maxclients", str(spec.maxclients),
        "--timeout", "0",                            # websocket clients idle for long
        "--tcp-keepalive", "60",
        "--client-output-buffer-limit", f"pubsub {spec.pubsub_buffer_mb}mb {spec.pubsub_buffer_mb // 4}mb 60",
    ]


def redis_server_command(spec: Redis) -> list[str]:
    """Container command: a shell so the password stays in the (secret) environment."""
    return ["sh", "-c", "exec redis-server " + " ".join(_quote(a) for a in redis_server_args(spec))]


def _quote(arg: str) -> str:
    return arg if arg.startswith('"') else f"'{arg}'"
