"""Time and size of a backup and a restore: real PostgreSQL + moto S3 on loopback, the real CLI.

    .venv/bin/python benchmarks/backup_bench.py [--rows 100000] [--apps 2] [--files 200] [--file-kb 16]

Each app gets `rows` messages (+ rows/20 users, rows/10 files of 128 B bytea), `files` uploaded files
of `file-kb` KB under apps/<app>/ in a files bucket, and `collections` Qdrant collections of
`collection-mb` MB (tests/qdrant_stub.py: Qdrant itself is not installable here). Bounded: the same
data is backed up and restored without and with client-side encryption (BACKUP_ENCRYPTION_KEY), then
the files alone against a parallel server-side copy, `rounds` times side by side; after each restore
every table, collection and file is compared with the original. Prints the times and their ratios.
"""
from __future__ import annotations

import argparse
import contextlib
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402
import psycopg  # noqa: E402

from appdata import create_app, drop_database, fingerprint  # noqa: E402
from backup_env import BACKUP_ROLE_PASSWORD, SIGNING_KEY, app_password_env, bootstrap_backup_role  # noqa: E402
from components.render.postgres import BACKUP_ROLE, report_columns_json  # noqa: E402
from qdrant_stub import qdrant_stub  # noqa: E402
from realservices import moto_s3_server, postgres_server, require_binary  # noqa: E402

ENCRYPTION_KEY = "bench-encryption-key-0f1e2d3c4b5a69788796a5b4"


def _stamp(line: str) -> datetime:
    return datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")


def file_phase(log: str, start_marker: str, end_marker: str) -> float:
    """Seconds from the job's first line saying it starts on an app's files to its last line saying it
    finished one (its own timestamps): backup: copying them (after the databases and Qdrant, and the first
    app's listing);
    restore: writing them back (the checksum checks before any change are in the restore's whole time only)."""
    lines = log.splitlines()
    start = next(line for line in lines if start_marker in line)
    end = [line for line in lines if end_marker in line][-1]
    return (_stamp(end) - _stamp(start)).total_seconds()


@contextlib.contextmanager
def netem_s3(delay_ms: float):
    """moto's S3 server in namespace bk-s3 at 198.18.20.2, every packet to it delayed; always removed."""
    def sh(*argv: str) -> None:
        subprocess.run(argv, check=True, capture_output=True)

    ns, host, peer = "bk-s3", "bk-veth0", "bk-veth1"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host, "type", "veth", "peer", "name", peer)
        sh("ip", "link", "set", peer, "netns", ns)
        sh("ip", "addr", "add", "198.18.20.1/24", "dev", host)
        sh("ip", "link", "set", host, "up")
        for argv in (["ip", "addr", "add", "198.18.20.2/24", "dev", peer], ["ip", "link", "set", peer, "up"],
                     ["ip", "link", "set", "lo", "up"]):
            sh("ip", "netns", "exec", ns, *argv)
        sh("tc", "qdisc", "add", "dev", host, "root", "netem", "delay", f"{delay_ms}ms")
        server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "moto.server",
                                   "-H", "198.18.20.2", "-p", "9000"], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c",
                                  "import socket; socket.create_connection(('198.18.20.2', 9000), 1)"],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto did not start in the namespace")
                time.sleep(0.2)
            yield "http://198.18.20.2:9000"
        finally:
            server.terminate()
            server.wait(timeout=10)
    finally:
        subprocess.run(["ip", "link", "del", host], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@contextlib.contextmanager
def latency_proxy(endpoint: str, delay_ms: float):
    """`endpoint` behind benchmarks/latency_proxy.py (every request to it `delay_ms` later); 0: endpoint itself."""
    if not delay_ms:
        yield endpoint
        return
    host_port = endpoint.removeprefix("http://").rstrip("/")
    proxy = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "latency_proxy.py"), "--to", host_port,
                              "--delay-ms", str(delay_ms)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proxy.stdout is not None
        yield f"http://127.0.0.1:{proxy.stdout.readline().split()[1]}"
    finally:
        assert proxy.stdin is not None
        proxy.stdin.close()  # the proxy stops when its stdin closes
        proxy.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=2)
    parser.add_argument("--files", type=int, default=200, help="uploaded files per app")
    parser.add_argument("--file-kb", type=int, default=16)
    parser.add_argument("--collections", type=int, default=2, help="Qdrant collections per app (a stub server)")
    parser.add_argument("--collection-mb", type=int, default=4)
    parser.add_argument("--workers", type=int, default=8, help="the job's BACKUP_FILE_WORKERS and the baseline's threads")
    parser.add_argument("--rounds", type=int, default=5,
                        help="file-phase comparisons, job and copy side by side in each (medians reported)")
    parser.add_argument("--netem-ms", type=float, default=0,
                        help="run moto in network namespace bk-s3 (198.18.20.2) behind this much added latency "
                             "per packet to it (tc netem; needs root); 0 = moto on loopback")
    parser.add_argument("--latency-ms", type=float, default=0,
                        help="every request of the timed runs (the job's and the baseline's) reaches moto this much "
                             "later, through benchmarks/latency_proxy.py (for kernels without netem)")
    args = parser.parse_args()
    apps = tuple(f"bench{i}" for i in range(1, args.apps + 1))
    work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    with postgres_server() as pg, (netem_s3(args.netem_ms) if args.netem_ms else moto_s3_server()) as direct, \
            latency_proxy(direct, args.latency_ms) as endpoint, qdrant_stub() as (qdrant_url, qdrant):
        vectors = {f"{app}_c{i}": os.urandom(args.collection_mb * 1024 * 1024)
                   for app in apps for i in range(args.collections)}
        qdrant.collections.update(vectors)
        t = time.monotonic()
        dbs = [create_app(pg, app, args.rows) for app in apps]
        bootstrap_backup_role(pg, apps, work)
        # Seeding and checks go straight to moto; the timed copies through `endpoint` (the proxy, if any),
        # with a connection per thread kept open, as the job's client keeps them.
        s3 = boto3.client("s3", endpoint_url=direct, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        timed_s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                aws_access_key_id="bench", aws_secret_access_key="bench",
                                config=Config(max_pool_connections=max(10, args.workers)))
        files_bucket = f"files-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=files_bucket)
        originals = {f"apps/{app}/{i:05d}.bin": os.urandom(args.file_kb * 1024)
                     for app in apps for i in range(args.files)}
        for key, body in originals.items():
            s3.put_object(Bucket=files_bucket, Key=key, Body=body)
        seed_s = time.monotonic() - t
        with psycopg.connect(pg.dsn()) as conn:
            db_bytes = sum(conn.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0] for db in dbs)
        before = {db: fingerprint(pg, db) for db in dbs}
        base = {"PATH": f"{Path(require_binary('pg_dump')).parent}:{os.environ['PATH']}",
                "PGHOST": pg.host, "PGPORT": str(pg.port), "PGUSER": BACKUP_ROLE, "PGPASSWORD": BACKUP_ROLE_PASSWORD,
                "BACKUP_STACK": "bench", "BACKUP_REPORT_COLUMNS": report_columns_json(), "BACKUP_S3_ENDPOINT": endpoint, "AWS_ACCESS_KEY_ID": "bench",
                "AWS_SECRET_ACCESS_KEY": "bench", "BACKUP_APPS": ",".join(apps), "BACKUP_SIGNING_KEY": SIGNING_KEY,
                "FILES_S3_BUCKET": files_bucket, "FILES_S3_ENDPOINT": endpoint,
                "BACKUP_LOCK_FILE": str(work / "lock"), "BACKUP_WORK_DIR": str(work),
                "BACKUP_STATE_FILE": str(work / "state.json"), "QDRANT_URL": qdrant_url,
                # Other keys for the files bucket: files are streamed through the job (encrypted or not),
                # so the two runs differ only by encryption. The files section below shares the keys.
                "FILES_AWS_ACCESS_KEY_ID": "bench-files", "FILES_AWS_SECRET_ACCESS_KEY": "bench-files",
                "QDRANT_API_KEY": qdrant.api_key, **app_password_env(apps)}

        logs: dict[str, str] = {}

        def cli(env: dict[str, str], *argv: str) -> float:
            start = time.monotonic()
            done = subprocess.run([sys.executable, "-m", "fleet_backup", *argv], cwd=REPO, env=env, check=True,
                                  capture_output=True, text=True, timeout=3600)
            logs[argv[0]] = done.stderr
            return time.monotonic() - start

        results = {}
        for label, extra in (("plain", {}), ("encrypted", {"BACKUP_ENCRYPTION_KEY": ENCRYPTION_KEY})):
            bucket = f"bench-{label}-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=bucket)
            env = {**base, **extra, "BACKUP_S3_BUCKET": bucket}
            backup_s = cli(env, "backup")
            stored = sum(o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                         for o in page.get("Contents", []))
            for db in dbs:
                drop_database(pg, db)
            for key in originals:
                s3.delete_object(Bucket=files_bucket, Key=key)
            qdrant.collections.update({name: b"lost" for name in vectors})
            restore_s = cli(env, "restore")
            equal = ({db: fingerprint(pg, db) for db in dbs} == before and qdrant.collections == vectors and all(
                s3.get_object(Bucket=files_bucket, Key=k)["Body"].read() == body for k, body in originals.items()))
            results[label] = (backup_s, restore_s, stored, equal)

        # Files on the same store as the backups: the job (server-side copies) against a plain parallel
        # server-side copy of the same objects with as many threads (what `aws s3 sync` does). One sample
        # of each moves by ±0.2 with the machine's other load: `rounds` pairs, each side run next to the
        # other (which goes first alternates), each restore into an emptied prefix, fresh buckets a round.
        same = {**base, "FILES_AWS_ACCESS_KEY_ID": "bench", "FILES_AWS_SECRET_ACCESS_KEY": "bench",
                "BACKUP_FILE_WORKERS": str(args.workers)}

        def parallel_copy(src: str, dst: str) -> float:
            start = time.monotonic()
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(lambda k: timed_s3.copy_object(Bucket=dst, Key=k, ChecksumAlgorithm="SHA256",
                                                             CopySource={"Bucket": src, "Key": k}), originals))
            return time.monotonic() - start

        def empty(bucket: str, prefix: str = "", remove: bool = False) -> None:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                if page.get("Contents"):
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in page["Contents"]],
                                                             "Quiet": True})
            if remove:
                s3.delete_bucket(Bucket=bucket)

        rounds: list[dict[str, float]] = []
        files_equal = True
        for r in range(args.rounds):
            baseline_bucket, job_bucket = f"bench-baseline-{uuid.uuid4().hex[:8]}", f"bench-files-{uuid.uuid4().hex[:8]}"
            s3.create_bucket(Bucket=baseline_bucket)
            s3.create_bucket(Bucket=job_bucket)
            env = {**same, "BACKUP_S3_BUCKET": job_bucket}
            t: dict[str, float] = {}

            def job_backup() -> None:
                t["job backup"] = cli(env, "backup")
                t["job backup files"] = file_phase(logs["backup"], "copying", "copied and verified")

            def job_restore() -> None:
                nonlocal files_equal
                empty(files_bucket, "apps/")
                t["job restore"] = cli(env, "restore", "--skip-qdrant")
                t["job restore files"] = file_phase(logs["restore"], "restoring", "files restored")
                files_equal &= all(s3.get_object(Bucket=files_bucket, Key=k)["Body"].read() == body
                                   for k, body in originals.items())

            def copy_backup() -> None:
                t["copy backup"] = parallel_copy(files_bucket, baseline_bucket)

            def copy_restore() -> None:
                empty(files_bucket, "apps/")
                t["copy restore"] = parallel_copy(baseline_bucket, files_bucket)

            first = r % 2 == 0
            for step in ((job_backup, copy_backup) if first else (copy_backup, job_backup)) + \
                        ((copy_restore, job_restore) if first else (job_restore, copy_restore)):
                step()
            empty(baseline_bucket, remove=True)
            empty(job_bucket, remove=True)
            rounds.append(t)
        results["files"] = (statistics.median(t["job backup"] for t in rounds),
                            statistics.median(t["job restore"] for t in rounds), 0, files_equal)
    shutil.rmtree(work)
    print(f"added latency per request to the store: {args.latency_ms or args.netem_ms:g} ms "
          f"({'latency_proxy.py' if args.latency_ms else 'netem' if args.netem_ms else 'none, loopback'})")
    print(f"apps={args.apps} messages/app={args.rows} files/app={args.files} x {args.file_kb} KB "
          f"qdrant collections/app={args.collections} x {args.collection_mb} MB")
    print(f"seed={seed_s:.1f}s database size={db_bytes / 1e6:.1f} MB (pg_database_size, all apps)")
    for label in ("plain", "encrypted"):
        backup_s, restore_s, stored, equal = results[label]
        print(f"{label:9} backup={backup_s:.2f}s restore={restore_s:.2f}s stored={stored / 1e6:.2f} MB "
              f"everything equal after restore: {equal}")
    (pb, pr, _, _), (eb, er, _, _) = results["plain"], results["encrypted"]
    print(f"encryption cost: backup x{eb / pb:.2f}, restore x{er / pr:.2f} (encrypted / plain, same data, one run)")
    _, _, _, files_equal = results["files"]
    print(f"files on the backup store ({args.workers} workers), job against a parallel server-side copy of the same "
          f"objects, {args.rounds} rounds side by side; files equal after every restore: {files_equal}")
    print("  round: job file phase / copy (ratio), backup | restore; job whole CLI run (databases included)")
    for r, t in enumerate(rounds, 1):
        print(f"  {r}: backup {t['job backup files']:.2f}s / {t['copy backup']:.2f}s "
              f"(x{t['job backup files'] / t['copy backup']:.2f}) | restore {t['job restore files']:.2f}s / "
              f"{t['copy restore']:.2f}s (x{t['job restore files'] / t['copy restore']:.2f}); "
              f"CLI backup {t['job backup']:.2f}s restore {t['job restore']:.2f}s")

    def median(key: str) -> float:
        return statistics.median(t[key] for t in rounds)

    def ratio(job: str, copy: str) -> str:
        ratios = sorted(t[job] / t[copy] for t in rounds)
        return f"x{statistics.median(ratios):.2f} (rounds x{ratios[0]:.2f} to x{ratios[-1]:.2f})"

    print(f"  median: copy backup={median('copy backup'):.2f}s restore={median('copy restore'):.2f}s; "
          f"job file phase backup={median('job backup files'):.2f}s restore={median('job restore files'):.2f}s; "
          f"job whole CLI run backup={median('job backup'):.2f}s restore={median('job restore'):.2f}s")
    print(f"files phase only (from the job's log), median of the rounds' ratios: backup "
          f"{ratio('job backup files', 'copy backup')}, restore {ratio('job restore files', 'copy restore')}")
    print(f"whole CLI run (databases, checks, process start), median of the rounds' ratios: backup "
          f"{ratio('job backup', 'copy backup')}, restore {ratio('job restore', 'copy restore')}")
    return 0 if all(r[3] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
