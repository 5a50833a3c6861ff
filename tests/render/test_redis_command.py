"""The Redis command line the fleet renders, run by a real redis-server."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from components.config import Redis
from components.render.redis import redis_server_command
from realservices import free_port, require_binary, running


def test_rendered_redis_command_runs_with_auth_persistence_and_no_eviction(tmp_path: Path) -> None:
    require_binary("redis-server")
    # Not redis-server's defaults (maxclients 10000, pubsub 32mb 8mb 60), so a dropped flag shows.
    shell, flag, command = redis_server_command(Redis(maxclients=4321, pubsub_buffer_mb=64))
    port = free_port()
    # Only what a container gives for free is added: where to listen and where to write.
    local = f"{command} --port {port} --bind 127.0.0.1 --dir {tmp_path}"
    env = {**os.environ, "REDIS_PASSWORD": "pa ss'word"}
    with running([shell, flag, local], port, env=env):
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, password="wrong").ping()
        client = redis.Redis(port=port, password="pa ss'word", decode_responses=True)
        assert client.ping()
        settings = {k: client.config_get(k)[k] for k in ("appendonly", "maxmemory-policy", "maxclients", "timeout",
                                                         "tcp-keepalive", "client-output-buffer-limit")}
        assert settings["appendonly"] == "yes"
        assert settings["maxmemory-policy"] == "noeviction"
        assert settings["maxclients"] == "4321"
        assert settings["timeout"] == "0"
        assert settings["tcp-keepalive"] == "60"
        assert "pubsub 67108864 16777216 60" in settings["client-output-buffer-limit"]
        client.set("k", "v")
        assert (tmp_path / "appendonlydir").is_dir()


def test_unauthenticated_clients_are_refused(tmp_path: Path) -> None:
    require_binary("redis-server")
    shell, flag, command = redis_server_command(Redis())
    port = free_port()
    with running([shell, flag, f"{command} --port {port} --bind 127.0.0.1 --dir {tmp_path}"], port,
                 env={**os.environ, "REDIS_PASSWORD": "x"}):
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port).get("anything")
