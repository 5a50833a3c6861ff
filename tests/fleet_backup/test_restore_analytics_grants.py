"""After a restore, the app's analytics role reads exactly the report's columns, as after a deploy: on
Open WebUI's real schema, from a dump that carries an older version's wider grants."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from backup_env import REPO, bootstrap_backup_role, job_env, ok, pg, s3, s3_endpoint  # noqa: F401
from openwebui_schema import AppDb, create_app_database, generate, load, openwebui_python

pytestmark = pytest.mark.openwebui

# What the report reads (fleet_analytics/queries.py), written out: the role may SELECT these and no other.
REPORT_COLUMNS = {("alembic_version", "version_num"), ("chat", "created_at"), ("chat_message", "created_at"),
                  ("chat_message", "model_id"), ("chat_message", "role"), ("chat_message", "usage"),
                  ("chat_message", "user_id"), ("file", "created_at"), ("file", "meta"),
                  ("knowledge", "created_at"), ("user", "email"), ("user", "id"), ("user", "name")}
ANALYTICS = "openwebui_chat_analytics"


@pytest.fixture
def restored(pg, s3_endpoint, s3, tmp_path: Path) -> Iterator[AppDb]:  # noqa: F811
    """App chat on Open WebUI's schema, given an older deploy's grants (SELECT on every table, now and
    later, and one to PUBLIC), backed up, then restored by the job."""
    python = openwebui_python()
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS openwebui_chat WITH (FORCE)")
    db = create_app_database(pg, "chat", python, tmp_path)
    load(db, generate("chat", 300, 1_790_000_000, 5, 11))
    with db.connect_as_app() as conn:
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {ANALYTICS}")
        conn.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {ANALYTICS}")
        conn.execute("GRANT SELECT ON auth TO PUBLIC")
    bootstrap_backup_role(pg, ("chat",), tmp_path)
    bucket = f"backups-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    env = {**job_env(pg, s3_endpoint, bucket, ("chat",), tmp_path), "APP_DB_PASSWORD_CHAT": db.password}
    ok(env, "backup")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    yield db


def as_analytics(db: AppDb) -> psycopg.Connection:
    return psycopg.connect(host=db.pg.host, port=db.pg.port, dbname=db.database, user=ANALYTICS,
                           password=db.analytics_password)


def test_after_a_restore_the_analytics_role_reads_exactly_the_reports_columns(restored: AppDb) -> None:
    with as_analytics(restored) as conn:
        columns = conn.execute(
            "SELECT c.relname::text, a.attname::text, has_column_privilege(c.oid, a.attnum, 'SELECT'),"
            "       has_table_privilege(c.oid, 'SELECT')"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
            "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE c.relkind = 'r'").fetchall()
    assert {(t, c) for t, c, can, _ in columns if can} == REPORT_COLUMNS
    assert [t for t, _, _, whole_table in columns if whole_table] == []
    assert "auth" in {t for t, *_ in columns}


def test_after_a_restore_the_report_runs_on_the_restored_data(restored: AppDb) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "PG"))}
    result = subprocess.run([sys.executable, "-m", "fleet_analytics", "report", "--from", "2026-09-01",
                             "--to", "2026-09-30", "--format", "json"], cwd=REPO, capture_output=True, text=True,
                            env={**env, "ANALYTICS_APPS": "chat", **restored.analytics_env()})
    assert result.returncode == 0, result.stderr
    messages = json.loads(result.stdout)["apps"]["chat"]["messages"]
    assert sum(messages.values()) == 300


def test_a_table_created_after_a_restore_is_not_readable_by_the_analytics_role(restored: AppDb) -> None:
    with restored.connect_as_app() as conn:
        conn.execute("CREATE TABLE later_secret (token text)")
    with as_analytics(restored) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM later_secret")
