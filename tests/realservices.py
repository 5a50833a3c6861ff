"""Real servers on loopback for the tests: PostgreSQL, Redis, nginx, moto's S3 server, stub upstreams.

Every server is started by a context manager that always stops it. A missing binary skips the
test on a developer machine and fails it in CI (`CI` set), so a broken install cannot pass green.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

# Debian installs server binaries outside PATH; pip installs tools (actionlint) beside this Python,
# which is not on PATH when the venv is not activated.
_EXTRA_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) + [
    Path("/usr/sbin"), Path(sys.executable).parent]


def require_binary(name: str, installed_by: str = "bash .ci/run") -> str:
    """Path of `name`; skip without it, except in CI where a missing binary is a failure."""
    found = shutil.which(name) or next(
        (str(d / name) for d in _EXTRA_BIN_DIRS if (d / name).exists()), None
    )
    if found:
        return found
    message = f"{name} is not installed ({installed_by} installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


@contextlib.contextmanager
def running(argv: list[str], port: int, *, env: dict[str, str] | None = None,
            timeout: float = 20.0) -> Iterator[subprocess.Popen]:
    """Run `argv` until the block ends; ready once `port` accepts connections on 127.0.0.1.

    `proc.stderr` reads what the process has written so far. It is a file, not a pipe: nobody drains
    a pipe while the server runs, and a chatty one (moto logs every request) blocks once it is full.
    """
    log = tempfile.NamedTemporaryFile(prefix="fleet-server-", suffix=".log")
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=log)
    proc.stderr = open(log.name, "rb")  # closed in finally, with the file itself
    try:
        wait_until(lambda: port_open(port) or proc.poll() is not None, timeout, f"{argv[0]} on :{port}")
        if proc.poll() is not None:
            raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr.read().decode()[-2000:]}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        proc.stderr.close()
        log.close()


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    superuser: str
    password: str

    def dsn(self, user: str | None = None, password: str | None = None, dbname: str = "postgres") -> str:
        return (f"host={self.host} port={self.port} dbname={dbname} "
                f"user={user or self.superuser} password={password or self.password}")

    def psql_env(self) -> dict[str, str]:
        return {**os.environ, "PGHOST": self.host, "PGPORT": str(self.port),
                "PGUSER": self.superuser, "PGPASSWORD": self.password, "PGDATABASE": "postgres"}


@contextlib.contextmanager
def postgres_server(server_args: list[str] = ()) -> Iterator[Postgres]:  # type: ignore[assignment]
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication; `server_args` are
    further `postgres` arguments (e.g. the rendered `-c name=value` pairs)."""
    initdb, postgres = require_binary("initdb"), require_binary("postgres")
    as_postgres: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        as_postgres = ["runuser", "-u", "postgres", "--"]
    workdir = Path(tempfile.mkdtemp(prefix="fleet-pg-"))
    if as_postgres:
        shutil.chown(workdir, "postgres", "postgres")
    password = "test-superuser-password"
    pwfile = workdir / "pw"
    pwfile.write_text(password)
    if as_postgres:
        shutil.chown(pwfile, "postgres", "postgres")
    data = workdir / "data"
    subprocess.run([*as_postgres, initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256",
                    f"--pwfile={pwfile}", "-E", "UTF8", "--no-instructions"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    argv = [*as_postgres, postgres, "-D", str(data), "-c", "listen_addresses=127.0.0.1",
            "-p", str(port), "-k", str(workdir), "-c", "fsync=off", *server_args]
    try:
        with running(argv, port, timeout=30):
            pg = Postgres("127.0.0.1", port, "postgres", password)
            # The port opens before startup ends ("the database system is starting up").
            wait_until(lambda: psql(pg, "-c", "SELECT 1", check=False).returncode == 0, 30,
                       "PostgreSQL to accept connections")
            yield pg
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def psql(pg: Postgres, *args: str, input_sql: str | None = None,
         env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real psql client against `pg`."""
    return subprocess.run([require_binary("psql"), "-X", "-v", "ON_ERROR_STOP=1", *args],
                          input=input_sql, text=True, capture_output=True, check=check,
                          env=env or pg.psql_env())


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1; yields its endpoint URL."""
    port = free_port()
    with running([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port):
        yield f"http://127.0.0.1:{port}"


@dataclass
class StubUpstream:
    """A stand-in Open WebUI replica (tests/stub_upstream.py) in its own process."""

    name: str
    port: int
    proc: subprocess.Popen

    def stats(self) -> dict[str, int]:
        """Requests and connections the replica has seen (asked directly, not through nginx)."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_stats", timeout=5) as r:
            return json.load(r)

    def requests_seen(self) -> int:
        return self.stats()["requests"]

    def kill(self) -> None:
        """SIGKILL: the replica dies without closing anything cleanly."""
        self.proc.kill()
        self.proc.wait(timeout=10)


@contextlib.contextmanager
def stub_upstream(name: str, static: Path | None = None) -> Iterator[StubUpstream]:
    """`static`: a directory whose _app/ files the replica serves, as Open WebUI serves its build."""
    port = free_port()
    script = Path(__file__).with_name("stub_upstream.py")
    with running([sys.executable, str(script), name, str(port), *([str(static)] if static else [])],
                 port) as proc:
        yield StubUpstream(name, port, proc)


class Nginx:
    """A private nginx instance: its own prefix directory, config, pid file and logs."""

    def __init__(self, binary: str, prefix: Path, proc: subprocess.Popen) -> None:
        self.binary, self.prefix, self.proc = binary, prefix, proc

    @property
    def conf_path(self) -> Path:
        return self.prefix / "nginx.conf"

    def worker_pids(self) -> set[int]:
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        return {int(pid) for pid in children.split()}

    def reload(self, conf_text: str) -> None:
        """Check and load a new config; return once the master runs workers with it."""
        old_workers = self.worker_pids()
        self.conf_path.write_text(conf_text)
        nginx_test(self.binary, self.prefix)
        subprocess.run([self.binary, *_nginx_args(self.prefix), "-s", "reload"], check=True, capture_output=True)
        wait_until(lambda: bool(self.worker_pids() - old_workers), 15, "nginx workers with the new config")


def _nginx_args(prefix: Path) -> list[str]:
    """A private instance: everything relative to `prefix`, start-up errors on stderr."""
    return ["-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-e", "stderr"]


def nginx_test(binary: str, prefix: Path) -> None:
    """`nginx -t` on prefix/nginx.conf; raises with nginx's own message when it fails."""
    result = subprocess.run([binary, "-t", *_nginx_args(prefix)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"nginx -t failed:\n{result.stderr}")


@contextlib.contextmanager
def nginx_server(conf_text: str, prefix: Path, port: int) -> Iterator[Nginx]:
    """nginx running `conf_text` from `prefix` in the foreground; ready once `port` accepts."""
    binary = require_binary("nginx")
    prefix.mkdir(parents=True, exist_ok=True)
    (prefix / "nginx.conf").write_text(conf_text)
    nginx_test(binary, prefix)
    # As root, workers would run as nobody, who cannot enter the test's private directories (the cache).
    user = " user root;" if os.geteuid() == 0 else ""
    with running([binary, *_nginx_args(prefix), "-g", f"daemon off;{user}"], port) as proc:
        yield Nginx(binary, prefix, proc)


_LISTEN = re.compile(r"^(\s*)listen (\d+)\b(.*;)$")
_UPSTREAM_SERVER = re.compile(r"^(\s*)server ([^\s:]+):(\d+)\b(.*;)$")
_PATH_DIRECTIVE = re.compile(r"^(\s*)(pid|error_log|access_log|ssl_certificate|ssl_certificate_key|proxy_cache_path|root"
                             r"|\w+_temp_path) (\S+?)(;|\s.*;)$")


def loopback_conf(conf_text: str, listen_ports: Mapping[int, int],
                  upstreams: Mapping[tuple[str, int], int], paths: Mapping[str, str]) -> str:
    """A rendered nginx.conf moved onto loopback: only listen ports, upstream addresses and paths change.

    listen_ports: rendered port -> loopback port (every listen must be mapped).
    upstreams: rendered (address, port) -> loopback port (every non-loopback upstream must be mapped).
    paths: rendered path prefix -> local directory, for pid, logs, temp dirs and certificates.
    """
    out = []
    for line in conf_text.splitlines():
        if m := _LISTEN.match(line):
            port = int(m[2])
            if port not in listen_ports:
                raise KeyError(f"listen port {port} has no loopback port")
            line = f"{m[1]}listen 127.0.0.1:{listen_ports[port]}{m[3]}"
        elif m := _UPSTREAM_SERVER.match(line):
            address, port = m[2], int(m[3])
            if (address, port) in upstreams:
                line = f"{m[1]}server 127.0.0.1:{upstreams[address, port]}{m[4]}"
            elif not address.startswith("127."):
                raise KeyError(f"upstream {address}:{port} has no loopback port")
        elif m := _PATH_DIRECTIVE.match(line):
            path = m[3]
            for old, new in paths.items():
                if path == old or path.startswith(old.rstrip("/") + "/"):
                    path = new + path[len(old):]
                    break
            line = f"{m[1]}{m[2]} {path}{m[4]}"
        out.append(line)
    return "\n".join(out) + "\n"
