"""TLS between nodes, run for real: PostgreSQL and redis-server with the rendered settings and a
fleet CA (made here with `cryptography`, as pulumi-tls makes it in a deploy). A client that trusts
the CA gets in; one without it, or one in clear text, is refused."""
from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from components.render.tls import (POSTGRES_HBA, postgres_tls_args, redis_tls_args, redis_url,
                                   server_names)
from realservices import free_port, require_binary, running, wait_until
from tests import fleet_ca


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server's certificate


def make_pki(directory: Path) -> Pki:
    ca = fleet_ca.make_ca("openwebui-fleet CA")
    dns, ips = server_names("openwebui-postgres", "127.0.0.1")
    cert, key = fleet_ca.server_cert(ca, dns[0], dns, ips)
    paths = Pki(directory / "ca.crt", directory / "server.crt", directory / "server.key", directory / "other-ca.crt")
    paths.ca.write_bytes(fleet_ca.ca_pem(ca))
    paths.other_ca.write_bytes(fleet_ca.ca_pem(fleet_ca.make_ca("someone else's CA")))
    paths.cert.write_bytes(cert)
    paths.key.write_bytes(key)
    paths.key.chmod(0o600)
    return paths


# ── PostgreSQL ─────────────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class TlsPostgres:
    port: int
    password: str
    pki: Pki


@pytest.fixture(scope="module")
def tls_postgres() -> Iterator[TlsPostgres]:
    initdb, postgres = require_binary("initdb"), require_binary("postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    workdir = Path(tempfile.mkdtemp(prefix="fleet-pg-tls-"))
    try:
        pki = make_pki(workdir)
        (workdir / "pg_hba.conf").write_text(POSTGRES_HBA)
        (workdir / "pw").write_text("tls-superuser-password")
        if as_postgres:
            for path in (workdir, *workdir.iterdir()):
                shutil.chown(path, "postgres", "postgres")
        subprocess.run([*as_postgres, initdb, "-D", str(workdir / "data"), "-U", "postgres",
                        "--auth=scram-sha-256", f"--pwfile={workdir / 'pw'}", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL)
        port = free_port()
        args = postgres_tls_args(key_file=str(pki.key), cert_file=str(pki.cert), hba_file=str(workdir / "pg_hba.conf"))
        argv = [*as_postgres, postgres, "-D", str(workdir / "data"), "-p", str(port), "-k", str(workdir),
                "-c", "listen_addresses=127.0.0.1", *args]
        with running(argv, port, timeout=30):
            server = TlsPostgres(port, "tls-superuser-password", pki)
            wait_until(lambda: _accepts(server), 30, "PostgreSQL to accept connections")
            yield server
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _accepts(server: TlsPostgres) -> bool:
    try:
        pg_connect(server, sslmode="verify-full", sslrootcert=str(server.pki.ca)).close()
        return True
    except psycopg.OperationalError as e:
        if "starting up" in str(e):
            return False
        raise


def pg_connect(server: TlsPostgres, host: str = "127.0.0.1", **tls: str) -> psycopg.Connection:
    return psycopg.connect(host=host, port=server.port, user="postgres", password=server.password,
                           dbname="postgres", connect_timeout=10, **tls)


def test_postgres_accepts_a_client_that_verifies_it_with_the_fleet_ca(tls_postgres: TlsPostgres) -> None:
    with pg_connect(tls_postgres, sslmode="verify-full", sslrootcert=str(tls_postgres.pki.ca)) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
    with pg_connect(tls_postgres, host="localhost", sslmode="verify-full", sslrootcert=str(tls_postgres.pki.ca)):
        pass


def test_postgres_refuses_clear_text(tls_postgres: TlsPostgres) -> None:
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        pg_connect(tls_postgres, sslmode="disable")


def test_a_postgres_client_without_the_fleet_ca_refuses_the_server(tls_postgres: TlsPostgres) -> None:
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        pg_connect(tls_postgres, sslmode="verify-full", sslrootcert=str(tls_postgres.pki.other_ca))


# ── Redis ──────────────────────────────────────────────────────────────────────────────────────

@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Pki]]:
    binary = require_binary("redis-server")
    workdir = tmp_path_factory.mktemp("redis-tls")
    pki = make_pki(workdir)
    port = free_port()
    argv = [binary, *redis_tls_args(port, cert_file=str(pki.cert), key_file=str(pki.key), ca_file=str(pki.ca)),
            "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "", "--requirepass", "tls-test"]
    with running(argv, port):
        yield port, pki


def test_redis_accepts_a_client_that_verifies_it_with_the_fleet_ca(tls_redis: tuple[int, Pki]) -> None:
    port, pki = tls_redis
    url = redis_url("default", "tls-test", f"127.0.0.1:{port}", tls=True).replace(
        "/etc/openwebui-fleet/tls/ca.crt", str(pki.ca))
    assert url.startswith("rediss://")
    assert redis.Redis.from_url(url).ping()


def test_redis_refuses_clear_text(tls_redis: tuple[int, Pki]) -> None:
    port, _ = tls_redis
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis(port=port, password="tls-test", socket_timeout=5).ping()


def test_a_redis_client_without_the_fleet_ca_refuses_the_server(tls_redis: tuple[int, Pki]) -> None:
    port, pki = tls_redis
    client = redis.Redis(port=port, password="tls-test", ssl=True, ssl_ca_certs=str(pki.other_ca),
                         ssl_cert_reqs=ssl.CERT_REQUIRED, socket_timeout=5)
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        client.ping()
