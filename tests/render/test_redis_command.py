"""The Redis command line the fleet renders, run by a real redis-server."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import redis

from components.config import Redis
from components.render.redis import redis_server_command
from realservices import free_port, require_binary, running, wait_until


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
                                                         "tcp-keepalive", "maxmemory", "client-output-buffer-limit")}
        assert settings["appendonly"] == "yes"
        assert settings["maxmemory-policy"] == "noeviction"
        assert settings["maxclients"] == "4321"
        assert settings["timeout"] == "1800"        # idle clients are closed (redis-server's default: never)
        assert settings["tcp-keepalive"] == "60"
        assert settings["maxmemory"] == "0"         # no limit unless maxmemoryMb is set
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


def test_configured_idle_timeout_keepalive_and_maxmemory_are_what_redis_runs_with(tmp_path: Path) -> None:
    require_binary("redis-server")
    spec = Redis(timeout=600, tcp_keepalive=30, maxmemory_mb=256, maxclients=2000)
    shell, flag, command = redis_server_command(spec)
    port = free_port()
    with running([shell, flag, f"{command} --port {port} --bind 127.0.0.1 --dir {tmp_path}"], port,
                 env={**os.environ, "REDIS_PASSWORD": "x"}):
        client = redis.Redis(port=port, password="x", decode_responses=True)
        got = {k: client.config_get(k)[k] for k in
               ("timeout", "tcp-keepalive", "maxmemory", "maxmemory-policy", "maxclients")}
    assert got == {"timeout": "600", "tcp-keepalive": "30", "maxmemory": str(256 * 1024 * 1024),
                   "maxmemory-policy": "noeviction", "maxclients": "2000"}


def test_a_full_redis_refuses_writes_instead_of_evicting_websocket_keys(tmp_path: Path) -> None:
    require_binary("redis-server")
    shell, flag, command = redis_server_command(Redis(maxmemory_mb=64))
    port = free_port()
    with running([shell, flag, f"{command} --port {port} --bind 127.0.0.1 --dir {tmp_path} --appendonly no"],
                 port, env={**os.environ, "REDIS_PASSWORD": "x"}):
        client = redis.Redis(port=port, password="x")
        client.set("session:first", "kept")
        with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
            for i in range(200):
                client.set(f"fill:{i}", b"x" * 1024 * 1024)
        assert client.get("session:first") == b"kept"


def test_an_idle_client_is_disconnected_after_the_timeout(tmp_path: Path) -> None:
    require_binary("redis-server")
    shell, flag, command = redis_server_command(Redis())
    port = free_port()
    # The smallest timeout the config allows (60 s) is too long for a test; the argv is the
    # rendered one with the value replaced, so this checks Redis's behaviour, not the renderer.
    local = command.replace("--timeout 1800", "--timeout 1")
    assert local != command
    with running([shell, flag, f"{local} --port {port} --bind 127.0.0.1 --dir {tmp_path}"], port,
                 env={**os.environ, "REDIS_PASSWORD": "x"}):
        idle = redis.Redis(port=port, password="x", single_connection_client=True)
        idle.ping()
        observer = redis.Redis(port=port, password="x", decode_responses=True)
        idle_id = idle.client_id()
        wait_until(lambda: all(c["id"] != str(idle_id) for c in observer.client_list()), timeout=15,
                   what="redis to close the idle client")
