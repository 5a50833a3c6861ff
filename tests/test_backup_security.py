"""Attacks on the backup job by a tenant (an app's own DB role) or by someone with write access to the bucket."""
from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from appdata import app_password
from backup_env import env, job, ok, pg, qdrant, s3, s3_endpoint  # noqa: F401


def _plant_superuser_escalation(pg, app_db: str, marker: Path) -> None:
    """As the app's own role: a CHECK constraint whose function tries to leave the role it runs as."""
    with psycopg.connect(pg.dsn(app_db, app_password("chat"), app_db)) as conn:
        conn.execute(f"""
            CREATE FUNCTION public.guard(x int) RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN
              BEGIN
                RESET ROLE;
                EXECUTE 'ALTER ROLE {app_db} SUPERUSER';
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
              BEGIN
                RESET ROLE;
                EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id > {marker}''';
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
              RETURN true;
            END $f$;
            CREATE TABLE audit (x int CHECK (public.guard(x)));
            INSERT INTO audit VALUES (1), (2), (3);
        """)


def test_a_tenant_function_run_by_restore_cannot_make_its_role_superuser_or_run_a_program(pg, env):
    marker = Path(f"/tmp/fleet-pwned-{uuid.uuid4().hex}")
    _plant_superuser_escalation(pg, "openwebui_chat", marker)
    assert not marker.exists()  # as the tenant itself, the attack does nothing
    ok(env, "backup")
    try:
        ok(env, "restore", "--app", "chat", "--skip-qdrant")
        assert not marker.exists(), "restore ran a program as the database server's OS user"
        with psycopg.connect(pg.dsn()) as admin:
            assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'openwebui_chat'").fetchone() == (
                False,)
        with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
            assert conn.execute("SELECT count(*) FROM audit").fetchone() == (3,)
    finally:
        marker.unlink(missing_ok=True)
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("ALTER ROLE openwebui_chat NOSUPERUSER")


def test_another_apps_role_cannot_connect_to_a_restored_database(pg, env):
    ok(env, "backup")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(pg.dsn("openwebui_docs_team", app_password("docs-team"), "openwebui_chat")).close()
    psycopg.connect(pg.dsn("openwebui_chat", app_password("chat"), "openwebui_chat")).close()
