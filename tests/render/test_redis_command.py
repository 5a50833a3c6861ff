"""The Redis command line and ACL file the fleet renders, run by a real redis-server.

Two apps, alpha and beta, each with its own ACL user: what one tenant can and cannot do to the other.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from components.config import Redis
from components.render.redis import (ADMIN_USER, RedisAppUser, acl_password_hash, redis_acl_file,
                                     redis_app_user, redis_health_command, redis_key_prefix,
                                     redis_server_command, redis_users_script)
from realservices import free_port, require_binary, running, wait_until

SPEC = Redis(maxclients=4321, pubsub_buffer_mb=64)
PASSWORDS = {"admin": "admin pa ss'word", "alpha": "alpha-password-0001", "beta": "beta-password-0002"}


@dataclass(frozen=True)
class Server:
    port: int
    pid: int
    acl_text: str
    dir: Path

    def client(self, app: str | None = None, **kwargs: object) -> redis.Redis:
        user = ADMIN_USER if app is None else redis_app_user(app)
        return redis.Redis(port=self.port, username=user, password=PASSWORDS[app or "admin"],
                           decode_responses=True, **kwargs)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    binary = require_binary("redis-server")
    workdir = tmp_path_factory.mktemp("redis")
    users = [RedisAppUser(redis_app_user(app), acl_password_hash(PASSWORDS[app]), redis_key_prefix(app))
             for app in ("alpha", "beta")]
    acl_text = redis_acl_file(acl_password_hash(PASSWORDS["admin"]), users)
    (workdir / "users.acl").write_text(acl_text)
    # Not redis-server's defaults (maxclients 10000, pubsub 32mb 8mb 60), so a dropped flag shows.
    command = redis_server_command(SPEC, acl_path=str(workdir / "users.acl"))
    port = free_port()
    # Only what a container gives for free is added: where to listen and where to write.
    argv = [binary, *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)]
    with running(argv, port) as proc:
        yield Server(port, proc.pid, acl_text, workdir)


def test_rendered_command_runs_with_persistence_and_no_eviction(server: Server) -> None:
    admin = server.client()
    settings = {k: admin.config_get(k)[k] for k in ("appendonly", "maxmemory-policy", "maxclients", "timeout",
                                                     "tcp-keepalive", "client-output-buffer-limit")}
    assert settings["appendonly"] == "yes"
    assert settings["maxmemory-policy"] == "noeviction"
    assert settings["maxclients"] == "4321"
    assert settings["timeout"] == "1800"        # idle clients are closed (redis-server's default: never)
    assert settings["tcp-keepalive"] == "60"
    assert "pubsub 67108864 16777216 60" in settings["client-output-buffer-limit"]
    admin.set("k", "v")
    assert (server.dir / "appendonlydir").is_dir()


def test_no_password_is_in_the_acl_file_or_the_servers_argv(server: Server) -> None:
    argv = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode(errors="replace")
    for password in PASSWORDS.values():
        assert password not in server.acl_text
        assert password not in argv
    assert "requirepass" not in argv


def test_the_health_check_passes_as_the_admin_user(server: Server) -> None:
    require_binary("redis-cli")
    command = redis_health_command().replace("redis-cli", f"redis-cli -p {server.port}", 1)
    env = {**os.environ, "REDISCLI_AUTH": PASSWORDS["admin"]}
    assert subprocess.run(["sh", "-c", command], env=env).returncode == 0
    env["REDISCLI_AUTH"] = "wrong"
    assert subprocess.run(["sh", "-c", command], env=env, capture_output=True).returncode != 0


def test_unauthenticated_clients_and_the_default_user_are_refused(server: Server) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port).get("anything")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, username="default", password="").get("anything")
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=server.port, username=redis_app_user("alpha"), password=PASSWORDS["beta"]).ping()


def test_one_app_cannot_read_or_write_another_apps_keys(server: Server) -> None:
    beta_key = f"{redis_key_prefix('beta')}:session:secret-session-id"
    server.client("beta").set(beta_key, "beta's session")
    server.client("beta").hset(f"{redis_key_prefix('beta')}:session_pool", "sid", "x")
    alpha = server.client("alpha")
    attempts = [
        lambda: alpha.get(beta_key),
        lambda: alpha.set(beta_key, "forged"),
        lambda: alpha.delete(beta_key),
        lambda: alpha.hgetall(f"{redis_key_prefix('beta')}:session_pool"),
        lambda: alpha.rename(f"{redis_key_prefix('alpha')}:x", beta_key),
        lambda: alpha.copy(beta_key, f"{redis_key_prefix('alpha')}:stolen"),
        lambda: alpha.eval("return redis.call('get', KEYS[1])", 1, beta_key),
        lambda: alpha.eval(f"return redis.call('get', '{beta_key}')", 0),
        lambda: alpha.get("open-webui-bet"),          # a prefix of the other's prefix is not its own
        lambda: alpha.get("open-webui-alpha"),        # nor is the bare prefix without ':'
    ]
    for attempt in attempts:
        with pytest.raises((redis.exceptions.NoPermissionError, redis.exceptions.ResponseError)):
            attempt()
    assert server.client("beta").get(beta_key) == "beta's session"


@pytest.mark.parametrize("command", [
    ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("SCAN", "0"), ("RANDOMKEY",), ("CONFIG", "GET", "*"),
    ("CONFIG", "SET", "dir", "/tmp"), ("MONITOR",), ("ACL", "LIST"),
    ("ACL", "SETUSER", "app-alpha", "~*"), ("CLIENT", "LIST"), ("CLIENT", "KILL", "TYPE", "normal"),
    ("INFO",), ("SLOWLOG", "GET"), ("SHUTDOWN",), ("SWAPDB", "0", "1"), ("REPLICAOF", "127.0.0.1", "1"),
    ("PUBSUB", "CHANNELS"), ("PSUBSCRIBE", "*"), ("PSUBSCRIBE", "socketio#*"), ("SCRIPT", "FLUSH"),
    ("FUNCTION", "FLUSH"), ("BGSAVE",), ("SAVE",), ("MODULE", "LIST"),
])
def test_an_app_cannot_run_server_wide_or_dangerous_commands(server: Server, command: tuple[str, ...]) -> None:
    alpha = server.client("alpha")
    with pytest.raises(redis.exceptions.NoPermissionError):
        alpha.execute_command(*command)
    assert server.client().ping()


def test_one_app_cannot_subscribe_or_publish_to_another_apps_channels(server: Server) -> None:
    alpha = server.client("alpha")
    with pytest.raises(redis.exceptions.NoPermissionError):
        alpha.publish(f"{redis_key_prefix('beta')}:tasks:commands", '{"action": "stop"}')
    pubsub = alpha.pubsub()
    with pytest.raises(redis.exceptions.NoPermissionError):
        pubsub.subscribe(f"{redis_key_prefix('beta')}:direct_completion")
        pubsub.get_message(timeout=2)


def test_an_app_can_do_what_open_webui_does_with_its_own_prefix(server: Server) -> None:
    """The command shapes Open WebUI 0.12.4 sends (socket/utils.py, socket/main.py, tasks.py)."""
    prefix = redis_key_prefix("alpha")
    alpha = server.client("alpha")
    assert alpha.set(f"{prefix}:usage_cleanup_lock", "id-1", nx=True, ex=60)       # RedisLock
    renew = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) end return 0"
    assert alpha.eval(renew, 1, f"{prefix}:usage_cleanup_lock", "id-1", 60) == 1
    with alpha.lock(f"{prefix}:chat:c1:presence:lock", timeout=5):              # redis-py Lock: EVALSHA
        alpha.hset(f"{prefix}:session_pool", "sid-1", '{"id": "u1"}')
    assert alpha.hgetall(f"{prefix}:session_pool") == {"sid-1": '{"id": "u1"}'}
    assert alpha.hscan(f"{prefix}:session_pool", 0)[1] == {"sid-1": '{"id": "u1"}'}
    pipe = alpha.pipeline(transaction=True)
    pipe.rpush(f"{prefix}:ydoc:documents:d1:updates", "[1]").incrby(f"{prefix}:ydoc:documents:d1:size", 3)
    pipe.zadd(f"{prefix}:apps:connections:a1", {"w1": 1e12}).expire(f"{prefix}:tasks:t1", 60)
    assert pipe.execute()[:2] == [1, 3]
    assert alpha.zcount(f"{prefix}:apps:connections:a1", 0, "+inf") == 1
    alpha.set(f"{prefix}:session:abc", "x", ex=60)                                 # starsessions' RedisStore
    assert alpha.get(f"{prefix}:session:abc") == "x"


def test_an_app_receives_its_own_and_socketio_messages(server: Server) -> None:
    prefix = redis_key_prefix("alpha")
    channels = ["socketio", "socketio#/#user:u1", f"{prefix}:tasks:commands", f"{prefix}:direct_completion"]
    listener = server.client("alpha").pubsub(ignore_subscribe_messages=True)
    listener.subscribe(*channels)
    wait_until(lambda: server.client().pubsub_numsub(*channels) == [(c, 1) for c in channels], 10, "subscriptions")
    publisher = server.client("alpha")
    received: list[str] = []
    for channel in channels:
        assert publisher.publish(channel, f"to {channel}") == 1

    def collect() -> bool:
        message = listener.get_message(timeout=0.2)
        if message is not None:
            received.append(message["channel"])
        return len(received) == len(channels)
    wait_until(collect, 10, "the messages")
    assert received == channels
    listener.close()


def test_residual_risk_every_app_shares_the_socketio_channel(server: Server) -> None:
    """Open WebUI 0.12.4 cannot name socket.io's channel per app; the README says so. If this starts
    failing, the channel became per-app: update the README's security section."""
    beta_listener = server.client("beta").pubsub(ignore_subscribe_messages=True)
    beta_listener.subscribe("socketio")
    wait_until(lambda: server.client().pubsub_numsub("socketio") == [("socketio", 1)], 10, "beta's subscription")
    assert server.client("alpha").publish("socketio", "from alpha") == 1
    beta_listener.close()


# ── the users step: a new app's user is loaded into the running Redis, without a restart ──────────

def acl_for(*apps: str) -> str:
    users = [RedisAppUser(redis_app_user(a), acl_password_hash(f"{a}-password"), redis_key_prefix(a)) for a in apps]
    return redis_acl_file(acl_password_hash(PASSWORDS["admin"]), users)


def run_users_step(tmp_path: Path, port: int, acl_text: str, admin_password: str) -> subprocess.CompletedProcess:
    require_binary("redis-cli")
    upload = tmp_path / "upload.acl"
    upload.write_text(acl_text)
    script = redis_users_script("127.0.0.1", port, upload=str(upload), acl_path=str(tmp_path / "users.acl"))
    return subprocess.run(["sh", "-c", script], env={**os.environ, "REDISCLI_AUTH": admin_password},
                          capture_output=True, text=True, timeout=60)


def test_the_users_step_installs_the_file_before_redis_first_starts(tmp_path: Path) -> None:
    result = run_users_step(tmp_path, free_port(), acl_for("alpha"), PASSWORDS["admin"])
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "users.acl").read_text() == acl_for("alpha")


def test_a_new_apps_user_is_loaded_live_and_a_removed_one_is_gone(tmp_path: Path) -> None:
    binary = require_binary("redis-server")
    (tmp_path / "users.acl").write_text(acl_for("alpha", "beta"))
    port = free_port()
    command = redis_server_command(Redis(), acl_path=str(tmp_path / "users.acl"))
    with running([binary, *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)],
                 port) as proc:
        result = run_users_step(tmp_path, port, acl_for("alpha", "gamma"), PASSWORDS["admin"])
        assert result.returncode == 0, result.stderr
        gamma = redis.Redis(port=port, username="app-gamma", password="gamma-password")
        assert gamma.set(f"{redis_key_prefix('gamma')}:k", "v")
        assert redis.Redis(port=port, username="app-alpha", password="alpha-password").ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis(port=port, username="app-beta", password="beta-password").ping()
        assert proc.poll() is None, "Redis kept running"


def test_the_users_step_fails_loudly_when_redis_refuses_it(tmp_path: Path) -> None:
    binary = require_binary("redis-server")
    (tmp_path / "users.acl").write_text(acl_for("alpha"))
    port = free_port()
    command = redis_server_command(Redis(), acl_path=str(tmp_path / "users.acl"))
    with running([binary, *command[1:], "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)], port):
        result = run_users_step(tmp_path, port, acl_for("alpha", "gamma"), "not-the-admin-password")
        assert result.returncode != 0 and "ACL LOAD failed" in result.stderr
        assert "not-the-admin-password" not in result.stderr + result.stdout


@contextlib.contextmanager
def admin_of(spec: Redis, workdir: Path, rewrite: Callable[[list[str]], list[str]] = lambda a: a) -> Iterator[redis.Redis]:
    """redis-server with `spec`'s rendered command and an ACL file holding only the admin user."""
    binary = require_binary("redis-server")
    (workdir / "users.acl").write_text(redis_acl_file(acl_password_hash(PASSWORDS["admin"]), []))
    command = redis_server_command(spec, acl_path=str(workdir / "users.acl"))
    port = free_port()
    with running([binary, *rewrite(command[1:]), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir)],
                 port):
        yield redis.Redis(port=port, username=ADMIN_USER, password=PASSWORDS["admin"], decode_responses=True)


def test_configured_idle_timeout_keepalive_and_maxmemory_are_what_redis_runs_with(tmp_path: Path) -> None:
    spec = Redis(timeout=600, tcp_keepalive=30, maxmemory_mb=256, maxclients=2000)
    with admin_of(spec, tmp_path) as client:
        got = {k: client.config_get(k)[k] for k in
               ("timeout", "tcp-keepalive", "maxmemory", "maxmemory-policy", "maxclients")}
    assert got == {"timeout": "600", "tcp-keepalive": "30", "maxmemory": str(256 * 1024 * 1024),
                   "maxmemory-policy": "noeviction", "maxclients": "2000"}


def test_a_full_redis_refuses_writes_instead_of_evicting_websocket_keys(tmp_path: Path) -> None:
    with admin_of(Redis(maxmemory_mb=64), tmp_path, lambda a: [*a, "--appendonly", "no"]) as client:
        client.set("session:first", "kept")
        with pytest.raises(redis.exceptions.ResponseError, match="maxmemory"):
            for i in range(200):
                client.set(f"fill:{i}", "x" * 1024 * 1024)
        assert client.get("session:first") == "kept"


def test_an_idle_client_is_disconnected_after_the_timeout(tmp_path: Path) -> None:
    # The smallest timeout the config allows (60 s) is too long for a test; the argv is the
    # rendered one with the value replaced, so this checks Redis's behaviour, not the renderer.
    def one_second(args: list[str]) -> list[str]:
        i = args.index("--timeout")
        assert args[i + 1] == "1800"
        return [*args[:i + 1], "1", *args[i + 2:]]
    with admin_of(Redis(), tmp_path, one_second) as observer:
        idle = redis.Redis(port=observer.connection_pool.connection_kwargs["port"], username=ADMIN_USER,
                           password=PASSWORDS["admin"], single_connection_client=True)
        idle.ping()
        idle_id = idle.client_id()
        wait_until(lambda: all(c["id"] != str(idle_id) for c in observer.client_list()), timeout=15,
                   what="redis to close the idle client")
