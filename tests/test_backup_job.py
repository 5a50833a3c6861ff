"""fleet_backup against a real PostgreSQL, moto's real S3 server and a Qdrant stub (see qdrant_stub)."""
from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import psycopg
import pytest

from appdata import create_app, drop_database, fingerprint
from qdrant_stub import QdrantState, qdrant_stub
from realservices import Postgres, moto_s3_server, postgres_server, require_binary, wait_until

REPO = Path(__file__).resolve().parent.parent
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
    url, state = qdrant
    state.collections.update({"chat_knowledge": b"chat vectors \x00\x01" * 100,
                              "docs-team_files": b"docs vectors" * 50, "other_x": b"not ours"})
    pg_bin = str(Path(require_binary("pg_dump")).parent)
    return {"PATH": f"{pg_bin}:{os.environ['PATH']}", "PGHOST": pg.host, "PGPORT": str(pg.port),
            "PGUSER": pg.superuser, "PGPASSWORD": pg.password,
            "BACKUP_STACK": "prod", "BACKUP_S3_BUCKET": bucket, "BACKUP_S3_ENDPOINT": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "BACKUP_APPS": ",".join(APPS), "QDRANT_URL": url, "QDRANT_API_KEY": state.api_key,
            "BACKUP_LOCK_FILE": str(tmp_path / "backup.lock"), "BACKUP_WORK_DIR": str(tmp_path)}


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


def test_restore_after_dropping_databases_brings_back_every_row_and_sequence(pg, env, s3):
    before = {db: fingerprint(pg, db) for db in dbs()}
    result = ok(env, "backup")
    for secret in (pg.password, "testing", env["QDRANT_API_KEY"]):
        assert secret not in result.stderr
    for db in dbs():
        drop_database(pg, db)

    ok(env, "restore", "--backup", "latest")

    assert {db: fingerprint(pg, db) for db in dbs()} == before
    assert before["openwebui_chat"]["owners"] == ["openwebui_chat"]
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        max_id = conn.execute("SELECT max(id) FROM messages").fetchone()[0]
        new_id = conn.execute("INSERT INTO messages (user_id, body) VALUES (1, 'after') RETURNING id").fetchone()[0]
        assert new_id == max_id + 1
        assert conn.execute("SELECT nextval('invoice_no')").fetchone()[0] == 1005


def test_backup_stores_each_objects_sha256_as_metadata_and_in_the_manifest(env, s3):
    ok(env, "backup")
    bucket = env["BACKUP_S3_BUCKET"]
    (run,) = run_ids(env)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    keys = sorted(o["key"] for o in manifest["objects"])
    assert keys == ["postgres/chat.dump", "postgres/docs-team.dump", "postgres/roles.sql",
                    "qdrant/chat_knowledge.snapshot", "qdrant/docs-team_files.snapshot"]
    for o in manifest["objects"]:
        head = s3.head_object(Bucket=bucket, Key=f"backups/prod/{run}/{o['key']}")
        assert head["Metadata"]["sha256"] == o["sha256"] and head["ContentLength"] == o["size"]
    roles = s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/postgres/roles.sql")["Body"].read().decode()
    assert "openwebui_chat" in roles and "SCRAM-SHA-256" not in roles  # passwords stripped


def test_restore_replaces_rows_and_drops_tables_added_after_the_backup(pg, env):
    ok(env, "backup")
    before = fingerprint(pg, "openwebui_chat")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("DELETE FROM messages WHERE id % 2 = 0")
        conn.execute("CREATE TABLE added_later (x int)")
    other_app = fingerprint(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_docs_team")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('kept', '{}')")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    assert fingerprint(pg, "openwebui_chat") == before
    assert fingerprint(pg, "openwebui_docs_team") != other_app  # --app chat leaves docs-team alone


def test_corrupted_dump_makes_restore_refuse_naming_the_object_and_changing_nothing(pg, env, s3, qdrant):
    ok(env, "backup")
    (run,) = run_ids(env)
    bad_key = f"backups/prod/{run}/postgres/docs-team.dump"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=bad_key, Body=b"not a dump")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker after backup', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    _, state = qdrant
    state.collections["chat_knowledge"] = b"changed after backup"

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6
    assert f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{bad_key}" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked
    assert state.collections["chat_knowledge"] == b"changed after backup"
    assert not any("upload" in call for call in state.calls)


def test_qdrant_collections_of_the_apps_are_snapshotted_and_restored(env, qdrant):
    _, state = qdrant
    original = dict(state.collections)
    ok(env, "backup")
    assert not state.snapshots  # snapshots are deleted from Qdrant once downloaded
    state.collections["chat_knowledge"] = b"lost"
    del state.collections["docs-team_files"]
    ok(env, "restore")
    assert state.collections == original
    assert not any("other_x" in call for call in state.calls)  # not an app's collection


def test_backup_is_refused_while_another_run_holds_the_lock_file(env, s3):
    with open(env["BACKUP_LOCK_FILE"], "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = job(env, "backup")
    assert result.returncode == 3
    assert "another backup or restore is running" in result.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"])


def test_backup_is_refused_while_another_hosts_lock_object_is_fresh_and_runs_once_it_is_stale(env, s3):
    lock = {"host": "some-other-host", "pid": 1, "command": "backup"}
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key="backups/prod/.lock", Body=json.dumps(lock).encode())
    result = job(env, "backup")
    assert result.returncode == 3 and "some-other-host" in result.stderr
    assert run_ids(env) == []
    # A crashed holder's lock counts as stale once older than BACKUP_LOCK_STALE_SECONDS.
    head = s3.head_object(Bucket=env["BACKUP_S3_BUCKET"], Key="backups/prod/.lock")
    wait_until(lambda: datetime.now(UTC) - head["LastModified"] > timedelta(seconds=1), 5,
               "lock object older than 1 s")
    ok({**env, "BACKUP_LOCK_STALE_SECONDS": "1"}, "backup")
    assert len(run_ids(env)) == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"], Prefix="backups/prod/.lock")


def test_list_shows_only_backups_with_a_manifest_newest_first_and_latest_restores_the_newest(pg, env, s3):
    ok(env, "backup")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('in second backup', '{}')")
    second_state = fingerprint(pg, "openwebui_chat")
    ok(env, "backup")
    incomplete = "29990101T000000.000000Z"  # newer than both, but no manifest: a crashed run
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{incomplete}/postgres/chat.dump",
                  Body=b"partial")
    runs = run_ids(env)
    assert len(runs) == 2 and runs == sorted(runs, reverse=True) and incomplete not in runs
    drop_database(pg, "openwebui_chat")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")  # latest is the default
    assert fingerprint(pg, "openwebui_chat") == second_state
    refused = job(env, "restore", "--backup", incomplete)
    assert refused.returncode == 6 and "has no manifest.json" in refused.stderr


def test_restore_is_refused_before_any_change_when_an_app_role_is_missing(pg, env):
    ok(env, "backup")
    drop_database(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("DROP ROLE openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    result = job(env, "restore")
    assert result.returncode == 6 and "openwebui_docs_team do not exist" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked


def test_failing_pg_dump_exits_with_dump_failed_and_writes_no_manifest(env):
    result = job({**env, "BACKUP_APPS": "chat,missing-app"}, "backup")
    assert result.returncode == 4 and "pg_dump of openwebui_missing_app failed" in result.stderr
    assert run_ids(env) == []


@pytest.mark.parametrize(("change", "message"), [
    ({"BACKUP_STACK": ""}, "BACKUP_STACK is not set"),
    ({"BACKUP_APPS": "Chat"}, "BACKUP_APPS: 'Chat' is not an app name"),
    ({"BACKUP_S3_PREFIX": "/abs/"}, "BACKUP_S3_PREFIX='/abs/'"),
    ({"PGHOST": ""}, "PGHOST is not set"),
])
def test_bad_environment_exits_with_config_error_naming_the_variable(env, change, message):
    result = job({**env, **change}, "backup")
    assert result.returncode == 2 and message in result.stderr
