"""Real servers on loopback for the tests: PostgreSQL, Redis, nginx, moto's S3 server.

Every server is started by a context manager that always stops it. A missing binary skips the
test on a developer machine and fails it in CI (`CI` set), so a broken install cannot pass green.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# Debian installs server binaries outside PATH.
_EXTRA_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True) + [Path("/usr/sbin")]


def require_binary(name: str) -> str:
    """Path of `name`; skip without it, except in CI where a missing binary is a failure."""
    found = shutil.which(name) or next(
        (str(d / name) for d in _EXTRA_BIN_DIRS if (d / name).exists()), None
    )
    if found:
        return found
    message = f"{name} is not installed (bash .ci/run installs it)"
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
    """Run `argv` until the block ends; ready once `port` accepts connections on 127.0.0.1."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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
def postgres_server() -> Iterator[Postgres]:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication."""
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
            "-p", str(port), "-k", str(workdir), "-c", "fsync=off"]
    try:
        with running(argv, port, timeout=30):
            yield Postgres("127.0.0.1", port, "postgres", password)
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
