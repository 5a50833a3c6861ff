"""What `sharedServices.tls` costs a client: PostgreSQL and Redis with and without TLS, side by side.

    .venv/bin/python benchmarks/tls_bench.py [--connects 200] [--queries 5000]

One PostgreSQL and one redis-server on 127.0.0.1, each serving clear text and TLS at once (the
renderers' TLS options from components/render/tls.py, an ECDSA P-256 fleet CA made with `cryptography`
as pulumi-tls makes it). The clients verify as the fleet's do (verify-full, rediss:// with the CA).
Rows: a new connection and one query (what a pool pays when it opens or reopens a connection), and one
query on an open connection (what every request pays). Median microseconds, and the ratio TLS / clear.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import psycopg  # noqa: E402
import redis  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from components.render.tls import postgres_tls_args, redis_tls_args, redis_url  # noqa: E402
from realservices import free_port, require_binary, running, wait_until  # noqa: E402

PASSWORD = "bench-password"
HBA = "local all all trust\nhost all all all scram-sha-256\n"  # both, so one server serves both rows


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openwebui-fleet CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    paths[2].chmod(0o600)
    return paths


def median_us(action: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def row(name: str, clear: float, tls: float) -> None:
    print(f"| {name:<44} | {clear:>9.0f} | {tls:>9.0f} | x{tls / clear:5.2f} (+{tls - clear:.0f} µs) |")


def bench_postgres(workdir: Path, ca: Path, cert: Path, key: Path, connects: int, queries: int) -> None:
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    (workdir / "hba").write_text(HBA)
    (workdir / "pw").write_text(PASSWORD)
    if as_postgres:
        for path in (workdir, *workdir.iterdir()):
            shutil.chown(path, "postgres", "postgres")
    subprocess.run([*as_postgres, require_binary("initdb"), "-D", str(workdir / "data"), "-U", "postgres",
                    "--auth=scram-sha-256", f"--pwfile={workdir / 'pw'}", "--no-instructions"],
                   check=True, stdout=subprocess.DEVNULL)
    port = free_port()
    args = postgres_tls_args(key_file=str(key), cert_file=str(cert), hba_file=str(workdir / "hba"))
    with running([*as_postgres, require_binary("postgres"), "-D", str(workdir / "data"), "-p", str(port),
                  "-k", str(workdir), "-c", "listen_addresses=127.0.0.1", *args], port, timeout=30):
        modes = {"clear": {"sslmode": "disable"}, "tls": {"sslmode": "verify-full", "sslrootcert": str(ca)}}

        def connect(mode: str) -> psycopg.Connection:
            return psycopg.connect(host="127.0.0.1", port=port, user="postgres", password=PASSWORD,
                                   dbname="postgres", **modes[mode])

        def ready() -> bool:
            try:
                connect("tls").close()
                return True
            except psycopg.OperationalError:
                return False
        wait_until(ready, 30, "PostgreSQL")

        def connect_and_query(mode: str) -> None:
            with connect(mode) as conn:
                conn.execute("SELECT 1").fetchone()
        row("PostgreSQL: connect + SELECT 1", median_us(lambda: connect_and_query("clear"), connects),
            median_us(lambda: connect_and_query("tls"), connects))
        with connect("clear") as clear, connect("tls") as tls:
            row("PostgreSQL: SELECT 1 on an open connection", median_us(lambda: clear.execute("SELECT 1").fetchone(), queries),
                median_us(lambda: tls.execute("SELECT 1").fetchone(), queries))
            payload = "SELECT repeat('x', 65536)"
            row("PostgreSQL: 64 KiB row on an open connection", median_us(lambda: clear.execute(payload).fetchone(), queries // 5),
                median_us(lambda: tls.execute(payload).fetchone(), queries // 5))


def bench_redis(workdir: Path, ca: Path, cert: Path, key: Path, connects: int, queries: int) -> None:
    clear_port, tls_port = free_port(), free_port()
    args = redis_tls_args(tls_port, cert_file=str(cert), key_file=str(key), ca_file=str(ca))
    args[args.index("--port") + 1] = str(clear_port)  # the fleet's is 0; both here, for the comparison
    with running([require_binary("redis-server"), *args, "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
                  "--requirepass", PASSWORD], tls_port):
        urls = {"clear": redis_url("default", PASSWORD, f"127.0.0.1:{clear_port}", tls=False),
                "tls": redis_url("default", PASSWORD, f"127.0.0.1:{tls_port}", tls=True).replace(
                    "/etc/openwebui-fleet/tls/ca.crt", str(ca))}

        def connect_and_ping(mode: str) -> None:
            client = redis.Redis.from_url(urls[mode])
            client.ping()
            client.close()
        row("Redis: connect + AUTH + PING", median_us(lambda: connect_and_ping("clear"), connects),
            median_us(lambda: connect_and_ping("tls"), connects))
        clear, tls = redis.Redis.from_url(urls["clear"]), redis.Redis.from_url(urls["tls"])
        row("Redis: PING on an open connection", median_us(clear.ping, queries), median_us(tls.ping, queries))
        clear.set("k", "x" * 65536)
        row("Redis: GET of 64 KiB on an open connection", median_us(lambda: clear.get("k"), queries // 5),
            median_us(lambda: tls.get("k"), queries // 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connects", type=int, default=200)
    parser.add_argument("--queries", type=int, default=5000)
    args = parser.parse_args()
    # Separate directories: PostgreSQL's is handed to the postgres user when run as root.
    pg_dir, redis_dir = Path(tempfile.mkdtemp(prefix="fleet-tls-bench-pg-")), Path(tempfile.mkdtemp(prefix="fleet-tls-bench-"))
    try:
        print(f"| {'median µs':<44} | {'clear':>9} | {'TLS':>9} | TLS / clear |")
        print(f"|{'-' * 46}|{'-' * 11}|{'-' * 11}|-------------|")
        bench_postgres(pg_dir, *make_pki(pg_dir), args.connects, args.queries)
        bench_redis(redis_dir, *make_pki(redis_dir), args.connects, args.queries)
    finally:
        shutil.rmtree(pg_dir, ignore_errors=True)
        shutil.rmtree(redis_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
