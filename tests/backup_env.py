"""The backup job's test bed: real PostgreSQL, moto's S3 server, a Qdrant stub, and the job's environment."""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import psycopg
import pytest

from appdata import app_password, create_app, drop_database
from components.render.postgres import (BACKUP_ROLE, BACKUP_ROLE_SQL, backup_role_command, backup_role_env,
                                        report_columns_json)
from plan.engine import PROJECT_DIR
from qdrant_stub import QdrantState, qdrant_stub
from realservices import Postgres, moto_s3_server, postgres_server, require_binary

REPO = PROJECT_DIR
BACKUP_ROLE_PASSWORD = "test-backup-role-password"
SIGNING_KEY = "test-signing-key-46b6a33f6b4f9035957a3f38b165a788"
APPS = ("chat", "docs-team")


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def qdrant() -> Iterator[tuple[str, QdrantState]]:
    with qdrant_stub() as stub:
        yield stub


@pytest.fixture
def s3(s3_endpoint: str):
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def env(pg: Postgres, s3_endpoint: str, s3, qdrant: tuple[str, QdrantState], tmp_path: Path) -> dict[str, str]:
    """The job container's environment: a fresh bucket, two apps with data, two Qdrant collections."""
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        for app in APPS:
            admin.execute(f"DROP DATABASE IF EXISTS openwebui_{app.replace('-', '_')} WITH (FORCE)")
    for app in APPS:
        create_app(pg, app, rows=3000)
    bootstrap_backup_role(pg, APPS, tmp_path)
    url, state = qdrant
    state.collections.update({"chat_knowledge": b"chat vectors \x00\x01" * 100,
                              "docs-team_files": b"docs vectors" * 50, "other_x": b"not ours"})
    return {**job_env(pg, s3_endpoint, bucket, APPS, tmp_path), "QDRANT_URL": url, "QDRANT_API_KEY": state.api_key}


def job_env(pg: Postgres, s3_endpoint: str, bucket: str, apps: tuple[str, ...], tmp_path: Path) -> dict[str, str]:
    """The job container's environment for `apps` (without Qdrant), as the program sets it."""
    pg_bin = str(Path(require_binary("pg_dump")).parent)
    return {"PATH": f"{pg_bin}:{os.environ['PATH']}", "PGHOST": pg.host, "PGPORT": str(pg.port),
            "PGUSER": BACKUP_ROLE, "PGPASSWORD": BACKUP_ROLE_PASSWORD,
            "BACKUP_STACK": "prod", "BACKUP_S3_BUCKET": bucket, "BACKUP_S3_ENDPOINT": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "BACKUP_APPS": ",".join(apps), "BACKUP_REPORT_COLUMNS": report_columns_json(),
            "BACKUP_LOCK_FILE": str(tmp_path / "backup.lock"), "BACKUP_WORK_DIR": str(tmp_path),
            "BACKUP_SIGNING_KEY": SIGNING_KEY, "BACKUP_STATE_FILE": str(tmp_path / "state" / "state.json"),
            **app_password_env(apps)}


def bootstrap_backup_role(pg: Postgres, apps: tuple[str, ...], tmp_path: Path,
                          password: str = BACKUP_ROLE_PASSWORD) -> subprocess.CompletedProcess[str]:
    """The job's own role, exactly as its one-shot container creates it: rendered command, script, env."""
    script = tmp_path / "backup-role.sql"
    script.write_text(BACKUP_ROLE_SQL)
    env = {**os.environ, **backup_role_env(list(apps), pg.host, pg.port, pg.superuser),
           "PATH": f"{Path(require_binary('psql')).parent}:{os.environ['PATH']}",
           "PGPASSWORD": pg.password, "BACKUP_DB_PASSWORD": password}
    result = subprocess.run(backup_role_command(str(script)), env=env, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    return result


def app_password_env(apps: tuple[str, ...]) -> dict[str, str]:
    """APP_DB_PASSWORD_<APP>: each app role's own login, which dump and restore run as."""
    return {"APP_DB_PASSWORD_" + a.upper().replace("-", "_"): app_password(a) for a in apps}


def manifest_of(s3, env: dict[str, str], run: str) -> dict:
    return json.loads(s3.get_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{run}/manifest.json")
                      ["Body"].read())


def write_manifest(s3, env: dict[str, str], run: str, manifest: dict, signing_key: str | None) -> None:
    """What someone with write access to the bucket can do: any manifest, with matching sha256 metadata
    (and, given the stack's key, a valid signature)."""
    body = json.dumps(manifest).encode()
    metadata = {"sha256": hashlib.sha256(body).hexdigest()}
    if signing_key is not None:
        metadata["signature"] = "hmac-sha256=" + hmac.new(signing_key.encode(), body, hashlib.sha256).hexdigest()
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{run}/manifest.json", Body=body,
                  Metadata=metadata)


def bucket_contents(s3, bucket: str) -> dict[str, bytes]:
    """Every object in the bucket, key -> bytes."""
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


@pytest.fixture
def files_env(env: dict[str, str], s3) -> tuple[dict[str, str], dict[str, bytes]]:
    """`env` plus a files bucket as Open WebUI leaves it: each app's uploads under apps/<app>/."""
    bucket = f"uploads-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    contents = {
        "apps/chat/3f2a_report.pdf": b"%PDF-1.7 small report",
        "apps/chat/nested/deep/dir/notes ünïcode.txt": "nested notes ✓".encode(),
        # Above boto3's 8 MB multipart threshold, so both copies go through multipart transfers.
        "apps/chat/9c1e_recording.bin": os.urandom(9 * 1024 * 1024),
        "apps/docs-team/a1_manual.docx": b"PK\x03\x04 docx bytes" * 1000,
        "apps/docs-team/empty.txt": b"",
        "apps/chat-2/not-in-backup-apps.txt": b"app chat-2 is not in BACKUP_APPS",
        "elsewhere/unrelated.txt": b"not under any app prefix",
    }
    for key, body in contents.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    return ({**env, "FILES_S3_BUCKET": bucket, "FILES_S3_ENDPOINT": env["BACKUP_S3_ENDPOINT"],
             "FILES_AWS_ACCESS_KEY_ID": "files-key-id", "FILES_AWS_SECRET_ACCESS_KEY": "files-secret-value"},
            contents)


def in_process(monkeypatch, env: dict[str, str], command: str, **restore: object) -> None:
    """Run the job in this process (so its store methods can be wrapped), with the container's environment;
    `restore`: run_restore's keyword arguments."""
    from fleet_backup.jobs import run_backup, run_restore
    from fleet_backup.settings import Settings, encryption_key, signing_key
    from fleet_backup.store import BackupStore
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings.from_env()
    store = BackupStore(settings, signing_key(), encryption_key())
    run_backup(settings, store) if command == "backup" else run_restore(settings, store, **restore)


def job(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet_backup", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def ok(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = job(env, *args)
    assert result.returncode == 0, result.stderr
    return result


def run_ids(env: dict[str, str]) -> list[str]:
    return [line.split("\t")[0] for line in ok(env, "list").stdout.splitlines()]


def dbs() -> list[str]:
    return ["openwebui_" + a.replace("-", "_") for a in APPS]


def delete_apps_files(s3, bucket: str) -> None:
    """Every app's uploaded files gone from the files bucket, as a restore may find it."""
    for key in bucket_contents(s3, bucket):
        if key.startswith(tuple(f"apps/{a}/" for a in APPS)):
            s3.delete_object(Bucket=bucket, Key=key)


def drop_app_databases(pg) -> None:
    for db in dbs():
        drop_database(pg, db)
