"""Health, status and restore drills of the backup job, against real PostgreSQL and moto's S3 server."""
from __future__ import annotations

import hashlib
import re
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from appdata import fingerprint
from backup_env import (SIGNING_KEY, dbs, env, job, manifest_of, ok, pg, qdrant, run_ids, s3,  # noqa: F401
                        s3_endpoint, write_manifest)
from fleet_backup.status import health

DAILY = "0 2 * * *"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def backup_run(code: int, finished: datetime, reason: str | None = None) -> dict:
    run = {"command": "backup", "exitCode": code, "finishedAt": finished.isoformat(), "durationSeconds": 1.0}
    return {**run, "reason": reason} if reason else run


@pytest.mark.parametrize(("state", "healthy", "why"), [
    ({}, False, "no schedule is running"),
    ({"schedule": DAILY, "scheduleStartedAt": (NOW - timedelta(hours=47)).isoformat()}, True, "ok"),
    ({"schedule": DAILY, "scheduleStartedAt": (NOW - timedelta(hours=49)).isoformat()}, False,
     "no backup has succeeded"),
    ({"schedule": DAILY, "scheduleStartedAt": "2026-01-01T00:00:00+00:00",
      "lastSuccess": backup_run(0, NOW - timedelta(hours=47)), "lastBackup": backup_run(0, NOW - timedelta(hours=47))},
     True, "ok"),
    ({"schedule": DAILY, "scheduleStartedAt": "2026-01-01T00:00:00+00:00",
      "lastSuccess": backup_run(0, NOW - timedelta(hours=49)), "lastBackup": backup_run(0, NOW - timedelta(hours=49))},
     False, "is 49.0 h old, over twice the schedule's interval (48.0 h)"),
    ({"schedule": "0 * * * *", "scheduleStartedAt": "2026-01-01T00:00:00+00:00",
      "lastSuccess": backup_run(0, NOW - timedelta(hours=3)), "lastBackup": backup_run(0, NOW - timedelta(hours=3))},
     False, "over twice the schedule's interval (2.0 h)"),
    ({"schedule": DAILY, "scheduleStartedAt": "2026-01-01T00:00:00+00:00",
      "lastSuccess": backup_run(0, NOW - timedelta(hours=30)),
      "lastBackup": backup_run(4, NOW - timedelta(hours=6), "pg_dump of openwebui_chat failed")},
     False, "the last backup failed (exit 4): pg_dump of openwebui_chat failed"),
])
def test_health_fails_after_a_failed_backup_or_two_intervals_without_success(state, healthy, why):
    assert health(state, NOW)[0] is healthy
    assert why in health(state, NOW)[1]


def status(env: dict[str, str]) -> dict:
    return json.loads(ok(env, "status", "--json").stdout)


def test_status_keeps_the_last_success_and_the_last_failure_across_processes(env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = manifest_of(s3, env, run)
    after_success = status(env)  # a new process: what it shows was kept on disk
    assert after_success["lastSuccess"]["runId"] == run and after_success["lastFailure"] is None
    sizes = {app: sum(o["size"] for o in manifest["objects"] if o.get("app") == app) for app in manifest["apps"]}
    assert after_success["lastSuccess"]["bytesPerApp"] == sizes and all(sizes.values())

    failed = job({**env, "APP_DB_PASSWORD_CHAT": "not-the-password"}, "backup")
    assert failed.returncode == 4

    after_failure = status(env)
    assert after_failure["lastSuccess"] == after_success["lastSuccess"]
    assert after_failure["lastFailure"]["exitCode"] == 4
    assert "pg_dump of openwebui_chat failed" in after_failure["lastFailure"]["reason"]
    assert "not-the-password" not in json.dumps(after_failure)
    text = ok(env, "status").stdout
    assert f"run {run}" in text and "exit 4: pg_dump of openwebui_chat failed" in text


def test_health_exit_code_follows_the_last_backup(env):
    state = Path(env["BACKUP_STATE_FILE"])
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"schedule": DAILY, "scheduleStartedAt": datetime.now(UTC).isoformat()}))
    assert job(env, "health").returncode == 0
    assert job({**env, "APP_DB_PASSWORD_CHAT": "not-the-password"}, "backup").returncode == 4
    unhealthy = job(env, "health")
    assert unhealthy.returncode == 9 and "the last backup failed (exit 4)" in unhealthy.stdout
    ok(env, "backup")
    assert job(env, "health").returncode == 0


def databases(pg) -> set[str]:
    with psycopg.connect(pg.dsn()) as admin:
        return {r[0] for r in admin.execute("SELECT datname FROM pg_database")}


def verify_records(s3, env: dict[str, str], run: str) -> list[dict]:
    listing = s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"], Prefix=f"backups/prod/{run}/verify/")
    return [json.loads(s3.get_object(Bucket=env["BACKUP_S3_BUCKET"], Key=o["Key"])["Body"].read())
            for o in listing.get("Contents", [])]


def test_a_good_backup_verifies_in_scratch_databases_and_the_live_ones_are_untouched(pg, env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = manifest_of(s3, env, run)
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
        conn.execute("INSERT INTO users (name, settings) VALUES ('after the backup', '{}')")
    (chat_entry,) = [o for o in manifest["objects"] if o["key"] == "postgres/chat.dump"]
    assert chat_entry["rowCounts"]["public.messages"] == messages == 3000
    live = {db: fingerprint(pg, db) for db in dbs()}
    before = databases(pg)

    ok(env, "verify")

    assert {db: fingerprint(pg, db) for db in dbs()} == live
    assert databases(pg) == before  # scratch databases dropped
    (record,) = verify_records(s3, env, run)
    assert record["ok"] is True and record["runId"] == run
    assert status(env)["lastVerify"]["exitCode"] == 0


def resign_with(s3, env: dict[str, str], run: str, key: str, body: bytes | None = None,
                counts: dict | None = None) -> None:
    """A backup damaged before its manifest was signed: the object and its entry agree, the data does not."""
    manifest = manifest_of(s3, env, run)
    (entry,) = [o for o in manifest["objects"] if o["key"] == key]
    if body is not None:
        s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{run}/{key}", Body=body)
        entry.update(sha256=hashlib.sha256(body).hexdigest(), size=len(body))
    if counts is not None:
        entry["rowCounts"] = counts
    write_manifest(s3, env, run, manifest, SIGNING_KEY)


def test_a_truncated_dump_fails_verification_naming_it(pg, env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    key = f"backups/prod/{run}/postgres/docs-team.dump"
    dump = s3.get_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key)["Body"].read()
    resign_with(s3, env, run, "postgres/docs-team.dump", body=dump[: len(dump) // 2])
    before = databases(pg)

    result = job(env, "verify", "--backup", run)

    assert result.returncode == 8, result.stderr
    assert f"backup {run} failed verification: {key}: pg_restore of openwebui_docs_team failed" in result.stderr
    assert databases(pg) == before
    assert [r["ok"] for r in verify_records(s3, env, run)] == [False]
    assert status(env)["lastVerify"]["exitCode"] == 8


def test_row_counts_that_disagree_with_the_backup_fail_verification_naming_table_and_object(env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    (entry,) = [o for o in manifest_of(s3, env, run)["objects"] if o["key"] == "postgres/chat.dump"]
    resign_with(s3, env, run, "postgres/chat.dump", counts={**entry["rowCounts"], "public.messages": 2999})
    result = job(env, "verify")
    assert result.returncode == 8
    assert (f"backups/prod/{run}/postgres/chat.dump: row counts differ "
            "(public.messages: backup recorded 2999, restored 3000)") in result.stderr


def test_a_damaged_qdrant_snapshot_fails_verification_naming_it(env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    key = f"backups/prod/{run}/qdrant/chat_knowledge.snapshot"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key, Body=b"bit rot")
    result = job(env, "verify")
    assert result.returncode == 8 and f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{key}" in result.stderr


LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z fleet-backup (INFO|WARNING|ERROR) .+")


def test_every_log_line_has_utc_time_level_and_the_app_where_one_is_concerned(env):
    lines = ok(env, "backup").stderr.splitlines() + job({**env, "APP_DB_PASSWORD_CHAT": "x"}, "backup").stderr.splitlines()
    assert lines and all(LINE.fullmatch(line) for line in lines), [l for l in lines if not LINE.fullmatch(l)]
    for app in ("chat", "docs-team"):
        assert any(f"app={app} dumped database" in line for line in lines)
    assert lines[-1].split(" ", 3)[2] == "ERROR" and "backup failed: pg_dump of openwebui_chat failed" in lines[-1]
