"""`sharedServices.tls: true` run for real: PostgreSQL and redis-server started with the commands,
files and names the `local` stack declares, and its clients connecting with the settings it declares.

pulumi-tls does not run under the mock engine, so the CA and server certificates are made here with
`cryptography` as components/fleet_tls.py asks pulumi-tls for them: ECDSA P-256, a CA certificate,
server certificates with the names from the stack's CertRequest resources. Everything else is the
stack's own: the server argv, pg_hba.conf, the ACL file, the psql bootstrap step (its env, command and
SQL), the replicas' DATABASE_URL and REDIS_URL, the Redis health check. Only paths inside images and
ports move (to a temporary directory and free loopback ports); a host name the test cannot resolve is
kept for the certificate check and dialled at 127.0.0.1 (libpq's hostaddr).
"""
from __future__ import annotations

import contextlib
import http.server
import json
import os
import shutil
import ssl
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

import botocore.exceptions
import psycopg
import pytest
import redis

from fleet_backup import jobs as backup_jobs
from fleet_backup.files import FileStore
from fleet_backup.qdrant import QdrantError
from fleet_backup.settings import FilesSource
from fleet_queries import CONTAINER, env, replicas_of
from openwebui_schema import openwebui_python
from plan.engine import Evaluation, evaluate
from realservices import free_port, require_binary, running, wait_until
from fleet_ca import CA, ca_pem, make_ca, server_cert
from tls_stack import with_tls

TLS_DIR = "/etc/openwebui-fleet/tls"
DECLARED_BUNDLE = "/tmp/openwebui-fleet-ca-bundle.pem"
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def declared() -> Evaluation:
    ev = evaluate("local", with_tls("local"))
    assert ev.error is None, ev.error
    return ev


@pytest.fixture(scope="module")
def fleet_ca() -> CA:
    """One CA for every service here, as in a deploy: a replica trusts one CA file."""
    return make_ca("openwebui-fleet CA")


@dataclass(frozen=True)
class Files:
    """The files a service container gets (TLS_DIR moved to `root`), and a CA that signed nothing here."""
    root: Path
    other_ca: Path

    def moved(self, text: str) -> str:
        return text.replace(TLS_DIR, str(self.root))

    @property
    def ca(self) -> Path:
        return self.root / "ca.crt"


def service_files(ev: Evaluation, ca: CA, container: str, root: Path) -> Files:
    """CA, certificate and key for `container` under `root`, with the names its CertRequest declares."""
    request = ev.named(f"shared-tls-{container}-request", "tls:index/certRequest:CertRequest").inputs
    cert, key = server_cert(ca, request["subject"]["commonName"], request["dnsNames"], request["ipAddresses"])
    root.mkdir(parents=True, exist_ok=True)
    (root / "ca.crt").write_bytes(ca_pem(ca))
    (root / "server.crt").write_bytes(cert)
    (root / "server.key").write_bytes(key)
    (root / "server.key").chmod(0o600)
    other = root / "other-ca.crt"
    other.write_bytes(ca_pem(make_ca("someone else's CA")))
    return Files(root, other)


def uploaded(container_inputs: dict, path: str) -> str:
    return next(u["content"] for u in container_inputs["uploads"] if u["file"] == path)


# ── PostgreSQL ─────────────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class Postgres:
    port: int
    files: Files


@pytest.fixture(scope="module")
def postgres(declared: Evaluation, fleet_ca: CA) -> Iterator[Postgres]:
    initdb, server = require_binary("initdb"), require_binary("postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    container = declared.named("shared-postgres", CONTAINER).inputs
    workdir = Path(tempfile.mkdtemp(prefix="fleet-tls-pg-"))
    try:
        files = service_files(declared, fleet_ca, "openwebui-postgres", workdir / "tls")
        hba = uploaded(container, f"{TLS_DIR}/pg_hba.conf")
        (files.root / "pg_hba.conf").write_text(hba)
        # The command copies the key to where PostgreSQL accepts it (owned by postgres, 0600): here too.
        script, argv = container["command"][2], container["command"][4:]
        assert script.startswith(f"install -m 0600 -o postgres -g postgres {TLS_DIR}/server.key "
                                 "/var/lib/postgresql/server.key && exec docker-entrypoint.sh")
        key_copy = workdir / "server.key"
        shutil.copy(files.root / "server.key", key_copy)
        admin_password = env(declared.named("shared-postgres", CONTAINER))["POSTGRES_PASSWORD"]
        (workdir / "pw").write_text(admin_password)
        if as_postgres:
            for path in (workdir, *workdir.rglob("*")):
                shutil.chown(path, "postgres", "postgres")
        subprocess.run([*as_postgres, initdb, "-D", str(workdir / "data"), "-U", "postgres",
                        "--auth=scram-sha-256", f"--pwfile={workdir / 'pw'}", "--no-instructions"],
                       check=True, stdout=subprocess.DEVNULL)
        args = [files.moved(a).replace("/var/lib/postgresql/server.key", str(key_copy)) for a in argv[1:]]
        port = free_port()
        with running([*as_postgres, server, "-D", str(workdir / "data"), "-p", str(port), "-k", str(workdir),
                      "-c", f"listen_addresses={LOOPBACK}", *args], port, timeout=30):
            pg = Postgres(port, files)
            wait_until(lambda: _accepts(pg), 30, "PostgreSQL to accept TLS connections")
            yield pg
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _accepts(pg: Postgres) -> bool:
    try:
        psycopg.connect(host="localhost", hostaddr=LOOPBACK, port=pg.port, user="x", password="x", dbname="x",
                        sslmode="verify-full", sslrootcert=str(pg.files.ca), connect_timeout=5).close()
    except psycopg.OperationalError as e:
        return "starting up" not in str(e)
    return True


def _bootstrap(declared: Evaluation, pg: Postgres, app: str, tmp: Path) -> None:
    """The app's one-shot psql step, as declared: its env (TLS settings included), command and SQL."""
    step = declared.named(f"{app}-database", CONTAINER).inputs
    script = next(u for u in step["uploads"] if u["file"].startswith("/bootstrap/"))
    (tmp / "bootstrap.sql").write_text(script["content"])
    psql_env = {k: pg.files.moved(v) for k, v in env(declared.named(f"{app}-database", CONTAINER)).items()}
    assert psql_env["PGSSLMODE"] == "verify-full"
    # The declared host (the container's name) stays the name checked; libpq dials loopback.
    psql_env.update(PGHOSTADDR=LOOPBACK, PGPORT=str(pg.port), PATH=os.environ["PATH"])
    argv = [a.replace(script["file"], str(tmp / "bootstrap.sql")) for a in step["command"]]
    argv[0] = require_binary(argv[0])
    subprocess.run(argv, env=psql_env, check=True, capture_output=True, timeout=60)


def replica_database_url(declared: Evaluation, app: str, files: Files) -> str:
    return files.moved(env(replicas_of(declared, app)[0])["DATABASE_URL"])


def test_the_declared_bootstrap_and_replica_url_connect_to_tls_postgres_and_verify_it(
        declared: Evaluation, postgres: Postgres, tmp_path: Path) -> None:
    _bootstrap(declared, postgres, "chat", tmp_path)
    url = replica_database_url(declared, "chat", postgres.files)
    with psycopg.connect(url, hostaddr=LOOPBACK, port=postgres.port, connect_timeout=10) as conn:
        assert conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (True,)
        assert conn.execute("SELECT current_user").fetchone() == ("openwebui_chat",)


def test_tls_postgres_refuses_clear_text(declared: Evaluation, postgres: Postgres, tmp_path: Path) -> None:
    _bootstrap(declared, postgres, "chat", tmp_path)
    url = replica_database_url(declared, "chat", postgres.files)
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(url, hostaddr=LOOPBACK, port=postgres.port, sslmode="disable", connect_timeout=10)


def test_a_postgres_client_without_the_fleet_ca_or_with_another_name_refuses_the_server(
        declared: Evaluation, postgres: Postgres) -> None:
    url = replica_database_url(declared, "chat", postgres.files)
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        psycopg.connect(url, hostaddr=LOOPBACK, port=postgres.port, sslrootcert=str(postgres.files.other_ca),
                        connect_timeout=10)
    # A name the certificate does not carry (a server that stole another's address) fails verify-full.
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        psycopg.connect(url, host="openwebui-impostor", hostaddr=LOOPBACK, port=postgres.port, connect_timeout=10)


# ── Redis ──────────────────────────────────────────────────────────────────────────────────────

@dataclass(frozen=True)
class Redis:
    port: int
    files: Files


@pytest.fixture(scope="module")
def tls_redis(declared: Evaluation, fleet_ca: CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Redis]:
    binary = require_binary("redis-server")
    workdir = tmp_path_factory.mktemp("fleet-tls-redis")
    files = service_files(declared, fleet_ca, "openwebui-redis", workdir / "tls")
    users = declared.named("shared-redis-users", CONTAINER).inputs
    (workdir / "users.acl").write_text(uploaded(users, "/acl-new/users.acl"))
    argv = [files.moved(a) for a in declared.named("shared-redis", CONTAINER).inputs["command"]]
    assert argv[0] == "redis-server"
    argv[argv.index("--aclfile") + 1] = str(workdir / "users.acl")
    port = free_port()
    argv[argv.index("--tls-port") + 1] = str(port)
    # 127.0.0.2 is a loopback address the certificate does not name.
    with running([binary, *argv[1:], "--bind", LOOPBACK, "127.0.0.2", "--dir", str(workdir), "--save", "",
                  "--appendonly", "no"], port):
        yield Redis(port, files)


def replica_redis_url(declared: Evaluation, files: Files, port: int, host: str = LOOPBACK) -> str:
    """The replica's REDIS_URL, dialled at `host` (the container name does not resolve here)."""
    url = urlsplit(files.moved(env(replicas_of(declared, "chat")[0])["REDIS_URL"]))
    return urlunsplit(url._replace(netloc=f"{url.netloc.rsplit('@', 1)[0]}@{host}:{port}"))


def test_the_declared_redis_url_connects_over_tls_as_the_apps_user(declared: Evaluation, tls_redis: Redis) -> None:
    client = redis.Redis.from_url(replica_redis_url(declared, tls_redis.files, tls_redis.port))
    assert client.ping()
    assert client.acl_whoami() == "app-chat"


def test_the_declared_redis_health_check_passes_over_tls(declared: Evaluation, tls_redis: Redis) -> None:
    container = declared.named("shared-redis", CONTAINER)
    check = tls_redis.files.moved(container.inputs["healthcheck"]["tests"][1])
    check = check.replace("redis-cli", f"{require_binary('redis-cli')} -p {tls_redis.port}", 1)
    health_env = {"REDISCLI_AUTH": env(container)["REDISCLI_AUTH"], "PATH": os.environ["PATH"]}
    assert subprocess.run(["sh", "-c", check], env=health_env, timeout=30).returncode == 0
    without_ca = check.replace(str(tls_redis.files.ca), str(tls_redis.files.other_ca))
    assert subprocess.run(["sh", "-c", without_ca], env=health_env, timeout=30,
                          capture_output=True).returncode != 0


def test_tls_redis_refuses_clear_text(declared: Evaluation, tls_redis: Redis) -> None:
    clear = replica_redis_url(declared, tls_redis.files, tls_redis.port).replace("rediss://", "redis://", 1)
    with pytest.raises(redis.exceptions.ConnectionError):
        redis.Redis.from_url(clear.split("?", 1)[0], socket_timeout=5).ping()
    # ... and has no clear-text port besides: the server, asked over TLS as its admin, listens on none.
    admin = redis.Redis(host=LOOPBACK, port=tls_redis.port, username="fleet-admin", ssl=True,
                        ssl_ca_certs=str(tls_redis.files.ca), socket_timeout=5,
                        password=env(declared.named("shared-redis", CONTAINER))["REDISCLI_AUTH"])
    assert admin.config_get("port") == {"port": "0"}


def test_a_redis_client_without_the_fleet_ca_or_with_another_name_refuses_the_server(
        declared: Evaluation, tls_redis: Redis) -> None:
    url = replica_redis_url(declared, tls_redis.files, tls_redis.port)
    other = url.replace(str(tls_redis.files.ca), str(tls_redis.files.other_ca))
    with pytest.raises(redis.exceptions.ConnectionError, match="certificate verify failed"):
        redis.Redis.from_url(other, socket_timeout=5).ping()
    unnamed = replica_redis_url(declared, tls_redis.files, tls_redis.port, host="127.0.0.2")
    with pytest.raises(redis.exceptions.ConnectionError, match="IP address mismatch|doesn't match"):
        redis.Redis.from_url(unnamed, socket_timeout=5).ping()


# ── Open WebUI 0.12.4's own clients, with a replica's declared env and start command ───────────

OPENWEBUI_CLIENTS = """
import asyncio, os, ssl
import boto3, qdrant_client
from sqlalchemy import text
from open_webui.utils.redis import get_redis_connection
from open_webui.internal.db import engine  # built from DATABASE_URL as Open WebUI builds it

assert get_redis_connection(os.environ["REDIS_URL"]).ping()
async def websocket_redis():
    return await get_redis_connection(os.environ["WEBSOCKET_REDIS_URL"], async_mode=True).ping()
assert asyncio.run(websocket_redis())
with engine.connect() as conn:
    assert conn.execute(text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).scalar() is True
# As open_webui/retrieval/vector/dbs/qdrant.py and storage/provider.py create their clients.
qdrant_client.QdrantClient(url=os.environ["QDRANT_URI"], api_key=os.environ["QDRANT_API_KEY"]).get_collections()
boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT_URL"], region_name="us-east-1",
             aws_access_key_id="k", aws_secret_access_key="s").head_bucket(Bucket="openwebui-files")
# The bundle keeps the public roots, for model APIs: far more than the one fleet CA.
assert len(ssl.create_default_context().get_ca_certs()) > 100
print("clients ok")
"""


@contextlib.contextmanager
def https_stand_in(files: Files) -> Iterator[int]:
    """Qdrant's `GET /collections` and S3's `HEAD /<bucket>` over TLS with a fleet certificate: what
    is checked is that the clients trust it, not what Qdrant or MinIO answer."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = json.dumps({"result": {"collections": []}, "status": "ok", "time": 0}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer((LOOPBACK, 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(files.root / "server.crt", files.root / "server.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def dial(url: str, host: str, port: int) -> str:
    """`url` with its host:port replaced (userinfo, path and query kept)."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{userinfo}{host}:{port}"))


def test_open_webuis_own_clients_verify_every_service_with_the_declared_env_and_command(
        declared: Evaluation, fleet_ca: CA, postgres: Postgres, tls_redis: Redis, tmp_path: Path) -> None:
    python = openwebui_python()
    _bootstrap(declared, postgres, "chat", tmp_path)
    replica = replicas_of(declared, "chat")[0]
    declared_env = env(replica)
    stand_in = service_files(declared, fleet_ca, "openwebui-qdrant", tmp_path / "tls")
    bundle = str(tmp_path / "bundle.pem")
    moved = {k: stand_in.moved(v).replace(DECLARED_BUNDLE, bundle) for k, v in declared_env.items()}
    assert moved["SSL_CERT_FILE"] == moved["AWS_CA_BUNDLE"] == bundle
    with https_stand_in(stand_in) as port:
        run_env = {**moved,
                   # The container names do not resolve here: PostgreSQL keeps its name for verify-full
                   # and is dialled at loopback; the others are dialled at 127.0.0.1, which they carry.
                   "DATABASE_URL": dial(moved["DATABASE_URL"], "openwebui-postgres", postgres.port) + f"&hostaddr={LOOPBACK}",
                   "REDIS_URL": dial(moved["REDIS_URL"], LOOPBACK, tls_redis.port),
                   "WEBSOCKET_REDIS_URL": dial(moved["WEBSOCKET_REDIS_URL"], LOOPBACK, tls_redis.port),
                   "QDRANT_URI": dial(moved["QDRANT_URI"], LOOPBACK, port),
                   "S3_ENDPOINT_URL": dial(moved["S3_ENDPOINT_URL"], LOOPBACK, port),
                   "DATA_DIR": str(tmp_path / "data"), "PATH": f"{Path(python).parent}:{os.environ['PATH']}",
                   "HOME": str(tmp_path)}
        (tmp_path / "data").mkdir()
        (tmp_path / "clients.py").write_text(OPENWEBUI_CLIENTS)
        # The declared command, with its bundle path moved and `bash start.sh` (the image's server)
        # replaced by the clients above.
        shell, flag, script = replica.inputs["command"]
        script = stand_in.moved(script).replace(DECLARED_BUNDLE, bundle)
        assert script.endswith("&& exec bash start.sh")
        script = script.replace("exec bash start.sh", f"exec python {tmp_path / 'clients.py'}")
        result = subprocess.run([shell, flag, script], env=run_env, capture_output=True, text=True, timeout=300,
                                cwd=tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "clients ok" in result.stdout
        # The same clients with the public roots alone (no fleet CA in the bundle) are refused.
        script_without_ca = script.replace(str(stand_in.ca), str(stand_in.other_ca))
        refused = subprocess.run([shell, flag, script_without_ca], env=run_env, capture_output=True, text=True,
                                 timeout=300, cwd=tmp_path)
        assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stderr + refused.stdout


def test_the_backup_job_verifies_qdrant_and_the_files_minio_against_the_fleet_ca_alone(
        declared: Evaluation, fleet_ca: CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = service_files(declared, fleet_ca, "openwebui-qdrant", tmp_path / "tls")
    job_env = {k: stand_in.moved(v) for k, v in env(declared.named("backup", CONTAINER)).items()}
    with https_stand_in(stand_in) as port:
        qdrant_url = dial(job_env["QDRANT_URL"], LOOPBACK, port)
        files = FilesSource(bucket=job_env["FILES_S3_BUCKET"], endpoint=dial(job_env["FILES_S3_ENDPOINT"], LOOPBACK, port),
                            region=job_env["FILES_S3_REGION"], prefix_template=job_env["FILES_S3_PREFIX_TEMPLATE"])
        keys = {"FILES_AWS_ACCESS_KEY_ID": "k", "FILES_AWS_SECRET_ACCESS_KEY": "s"}
        monkeypatch.setenv("FLEET_CA_FILE", job_env["FLEET_CA_FILE"])
        qdrant = backup_jobs._qdrant(SimpleNamespace(qdrant_url=qdrant_url))
        assert qdrant is not None and qdrant.collections(["chat_"]) == []
        FileStore(files, {**job_env, **keys}).s3.head_bucket(Bucket=files.bucket)
        # Without FLEET_CA_FILE the job trusts the public roots only, which did not sign the fleet's servers.
        monkeypatch.delenv("FLEET_CA_FILE")
        with pytest.raises(QdrantError, match="CERTIFICATE_VERIFY_FAILED"):
            backup_jobs._qdrant(SimpleNamespace(qdrant_url=qdrant_url)).collections(["chat_"])
        without = {k: v for k, v in job_env.items() if k != "FLEET_CA_FILE"}
        with pytest.raises(botocore.exceptions.SSLError):
            FileStore(files, {**without, **keys}).s3.head_bucket(Bucket=files.bucket)
