"""fleet_backup against a real PostgreSQL, moto's real S3 server and a Qdrant stub (see qdrant_stub)."""
from __future__ import annotations

import fcntl
import hashlib
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
from plan.engine import PROJECT_DIR
from qdrant_stub import QdrantState, qdrant_stub
from realservices import Postgres, moto_s3_server, postgres_server, require_binary, wait_until

REPO = PROJECT_DIR
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


def test_restore_after_deleting_files_and_dropping_databases_brings_back_every_file_byte_for_byte(
        pg, files_env, s3):
    env, original = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    before = {db: fingerprint(pg, db) for db in dbs()}
    result = ok(env, "backup")
    assert "files-secret-value" not in result.stderr and "files-key-id" not in result.stderr
    for key in bucket_contents(s3, files_bucket):
        if key.startswith(("apps/chat/", "apps/docs-team/")):
            s3.delete_object(Bucket=files_bucket, Key=key)
    for db in dbs():
        drop_database(pg, db)

    result = ok(env, "restore")

    assert "files-secret-value" not in result.stderr
    assert bucket_contents(s3, files_bucket) == original
    assert {db: fingerprint(pg, db) for db in dbs()} == before


def test_backup_copies_each_apps_files_under_files_app_with_their_sha256_in_the_manifest(files_env, s3):
    env, original = files_env
    ok(env, "backup")
    (run,) = run_ids(env)
    bucket = env["BACKUP_S3_BUCKET"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    stored = {o["key"]: o for o in manifest["objects"] if o["kind"] == "file"}
    expected = {"files/chat/3f2a_report.pdf": "apps/chat/3f2a_report.pdf",
                "files/chat/nested/deep/dir/notes ünïcode.txt": "apps/chat/nested/deep/dir/notes ünïcode.txt",
                "files/chat/9c1e_recording.bin": "apps/chat/9c1e_recording.bin",
                "files/docs-team/a1_manual.docx": "apps/docs-team/a1_manual.docx",
                "files/docs-team/empty.txt": "apps/docs-team/empty.txt"}
    assert set(stored) == set(expected)  # not chat-2's prefix, not keys outside any app's prefix
    for key, source in expected.items():
        body = original[source]
        assert stored[key]["sha256"] == hashlib.sha256(body).hexdigest() and stored[key]["size"] == len(body)
        obj = s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/{key}")
        assert obj["Body"].read() == body and obj["Metadata"]["sha256"] == stored[key]["sha256"]
    assert manifest["files"] == {"bucket": env["FILES_S3_BUCKET"],
                                 "prefixes": {"chat": "apps/chat/", "docs-team": "apps/docs-team/"}}


def test_corrupted_file_in_the_backup_makes_restore_refuse_naming_it_and_changing_no_database_or_file(
        pg, files_env, s3):
    env, _ = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    ok(env, "backup")
    (run,) = run_ids(env)
    bad_key = f"backups/prod/{run}/files/docs-team/a1_manual.docx"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=bad_key, Body=b"tampered")
    s3.delete_object(Bucket=files_bucket, Key="apps/chat/3f2a_report.pdf")
    s3.put_object(Bucket=files_bucket, Key="apps/chat/nested/deep/dir/notes ünïcode.txt", Body=b"edited later")
    drop_database(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker after backup', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    files_before = bucket_contents(s3, files_bucket)

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6
    assert f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{bad_key}" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked
    with psycopg.connect(pg.dsn()) as admin:
        assert not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_docs_team'").fetchone()
    assert bucket_contents(s3, files_bucket) == files_before


def test_files_uploaded_after_the_backup_stay_on_restore_unless_prune_files_and_only_chosen_apps_change(
        files_env, s3):
    env, original = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    ok(env, "backup")
    later = {"apps/chat/uploaded-later.txt": b"new", "apps/docs-team/uploaded-later.txt": b"new too",
             "apps/docs-team/a1_manual.docx": b"docs-team edited later"}
    for key, body in {**later, "apps/chat/3f2a_report.pdf": b"chat edited later"}.items():
        s3.put_object(Bucket=files_bucket, Key=key, Body=body)

    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    assert bucket_contents(s3, files_bucket) == {**original, **later}  # chat's same key restored, extra kept

    ok(env, "restore", "--app", "chat", "--skip-qdrant", "--prune-files")
    del later["apps/chat/uploaded-later.txt"]  # only chat's extra goes; docs-team, chat-2, others untouched
    assert bucket_contents(s3, files_bucket) == {**original, **later}


def test_without_files_s3_bucket_files_are_neither_backed_up_nor_touched_by_restore(files_env, s3):
    with_files, original = files_env
    env = {k: v for k, v in with_files.items() if not k.startswith("FILES_")}
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = json.loads(s3.get_object(Bucket=env["BACKUP_S3_BUCKET"],
                                        Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    assert "files" not in manifest and all(o["kind"] != "file" for o in manifest["objects"])
    s3.delete_object(Bucket=with_files["FILES_S3_BUCKET"], Key="apps/chat/3f2a_report.pdf")
    left = bucket_contents(s3, with_files["FILES_S3_BUCKET"])
    ok(with_files, "restore")  # a backup without files: FILES_S3_BUCKET at restore changes nothing
    assert bucket_contents(s3, with_files["FILES_S3_BUCKET"]) == left
    refused = job(with_files, "restore", "--prune-files")
    assert refused.returncode == 2 and "has no files to restore" in refused.stderr


def test_restore_of_a_backup_with_files_needs_files_s3_bucket_or_skip_files(pg, files_env, s3):
    with_files, _ = files_env
    ok(with_files, "backup")
    env = {k: v for k, v in with_files.items() if not k.startswith("FILES_")}
    refused = job(env, "restore")
    assert refused.returncode == 2 and "FILES_S3_BUCKET is not set" in refused.stderr
    drop_database(pg, "openwebui_chat")
    ok(env, "restore", "--skip-files")
    with psycopg.connect(pg.dsn()) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_chat'").fetchone()


def test_files_prefix_overlapping_the_backups_in_the_same_bucket_is_a_config_error(env):
    same_bucket = {"FILES_S3_BUCKET": env["BACKUP_S3_BUCKET"], "FILES_S3_ENDPOINT": env["BACKUP_S3_ENDPOINT"]}
    result = job({**env, **same_bucket, "FILES_S3_PREFIX_TEMPLATE": "{app}/", "BACKUP_S3_PREFIX": "chat/backups/"},
                 "backup")
    assert result.returncode == 2 and "gives 'chat/' for app chat, which overlaps BACKUP_S3_PREFIX" in result.stderr
    assert job({**env, **same_bucket}, "list").returncode == 0  # apps/<app>/ beside backups/prod/ is fine


@pytest.mark.parametrize(("change", "message"), [
    ({"BACKUP_STACK": ""}, "BACKUP_STACK is not set"),
    ({"FILES_S3_BUCKET": "uploads", "FILES_S3_PREFIX_TEMPLATE": "apps/{app}"},
     "FILES_S3_PREFIX_TEMPLATE='apps/{app}' must contain {app}, end in '/'"),
    ({"FILES_S3_BUCKET": "uploads", "FILES_AWS_ACCESS_KEY_ID": "k"}, "FILES_AWS_SECRET_ACCESS_KEY is not"),
    ({"FILES_S3_ENDPOINT": "http://minio:9000"}, "FILES_S3_ENDPOINT set but FILES_S3_BUCKET is not"),
    ({"BACKUP_APPS": "Chat"}, "BACKUP_APPS: 'Chat' is not an app name"),
    ({"BACKUP_S3_PREFIX": "/abs/"}, "BACKUP_S3_PREFIX='/abs/'"),
    ({"PGHOST": ""}, "PGHOST is not set"),
])
def test_bad_environment_exits_with_config_error_naming_the_variable(env, change, message):
    result = job({**env, **change}, "backup")
    assert result.returncode == 2 and message in result.stderr
