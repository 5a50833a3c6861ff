"""Time and size of a backup and a restore: real PostgreSQL + moto S3 on loopback, the real CLI.

    /tmp/venv/bin/python benchmarks/backup_bench.py [--rows 100000] [--apps 2]

Each app gets `rows` messages (+ rows/20 users, rows/10 files of 128 B bytea). Bounded: one backup,
drop every database, one restore, then every table is compared with the original.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import boto3  # noqa: E402
import psycopg  # noqa: E402

from appdata import create_app, drop_database, fingerprint  # noqa: E402
from realservices import moto_s3_server, postgres_server, require_binary  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--apps", type=int, default=2)
    args = parser.parse_args()
    apps = [f"bench{i}" for i in range(1, args.apps + 1)]
    with postgres_server() as pg, moto_s3_server() as endpoint:
        t = time.monotonic()
        dbs = [create_app(pg, app, args.rows) for app in apps]
        seed_s = time.monotonic() - t
        with psycopg.connect(pg.dsn()) as conn:
            db_bytes = sum(conn.execute("SELECT pg_database_size(%s)", (db,)).fetchone()[0] for db in dbs)
        before = {db: fingerprint(pg, db) for db in dbs}
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="bench", aws_secret_access_key="bench")
        s3.create_bucket(Bucket=bucket)
        work = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
        env = {"PATH": f"{Path(require_binary('pg_dump')).parent}:{os.environ['PATH']}",
               "PGHOST": pg.host, "PGPORT": str(pg.port), "PGUSER": pg.superuser, "PGPASSWORD": pg.password,
               "BACKUP_STACK": "bench", "BACKUP_S3_BUCKET": bucket, "BACKUP_S3_ENDPOINT": endpoint,
               "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "BACKUP_APPS": ",".join(apps),
               "BACKUP_LOCK_FILE": str(work / "lock"), "BACKUP_WORK_DIR": str(work)}

        def cli(*argv: str) -> float:
            start = time.monotonic()
            subprocess.run([sys.executable, "-m", "fleet_backup", *argv], cwd=REPO, env=env, check=True,
                           capture_output=True, timeout=1800)
            return time.monotonic() - start

        backup_s = cli("backup")
        stored = sum(o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
        for db in dbs:
            drop_database(pg, db)
        restore_s = cli("restore")
        equal = {db: fingerprint(pg, db) for db in dbs} == before
        shutil.rmtree(work)
    print(f"apps={args.apps} messages/app={args.rows} users/app={args.rows // 20} files/app={args.rows // 10}")
    print(f"seed={seed_s:.1f}s database size={db_bytes / 1e6:.1f} MB (pg_database_size, all apps)")
    print(f"backup={backup_s:.2f}s stored={stored / 1e6:.2f} MB in S3 (dumps + roles + manifest)")
    print(f"restore={restore_s:.2f}s every table equal after restore: {equal}")
    return 0 if equal else 1


if __name__ == "__main__":
    sys.exit(main())
