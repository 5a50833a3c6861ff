"""The backup job's own PostgreSQL role, created by the real psql against a real PostgreSQL."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from components.render.postgres import BACKUP_ROLE, BACKUP_ROLE_SQL, backup_role_command, backup_role_env
from realservices import Postgres, postgres_server, require_binary


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            for role in ("openwebui_alpha", "openwebui_beta_team", "openwebui_gamma"):
                admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        yield server


def create_role(pg: Postgres, apps: list[str], password: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Exactly what the one-shot container runs: the rendered command, script and environment."""
    script = tmp_path / "backup-role.sql"
    script.write_text(BACKUP_ROLE_SQL)
    env = {**os.environ, **backup_role_env(apps, pg.host, pg.port, pg.superuser),
           "PATH": f"{Path(require_binary('psql')).parent}:{os.environ['PATH']}",
           "PGPASSWORD": pg.password, "BACKUP_DB_PASSWORD": password}
    return subprocess.run(backup_role_command(str(script)), env=env, text=True, capture_output=True)


def as_job(pg: Postgres, password: str) -> psycopg.Connection:
    return psycopg.connect(pg.dsn(BACKUP_ROLE, password), autocommit=True)


def memberships(pg: Postgres) -> set[str]:
    with psycopg.connect(pg.dsn()) as admin:
        return {r[0] for r in admin.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", (BACKUP_ROLE,))}


def test_the_job_role_is_no_superuser_and_cannot_become_one_or_run_programs(pg: Postgres, tmp_path: Path) -> None:
    result = create_role(pg, ["alpha", "beta-team"], "job-pw", tmp_path)
    assert result.returncode == 0, result.stderr
    with psycopg.connect(pg.dsn()) as admin:
        assert admin.execute("SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls "
                             "FROM pg_roles WHERE rolname = %s", (BACKUP_ROLE,)).fetchone() == (
            False, False, True, False, False)
    for statement in (f"ALTER ROLE {BACKUP_ROLE} SUPERUSER", "ALTER ROLE openwebui_alpha SUPERUSER",
                      "CREATE ROLE sneaky LOGIN", "COPY (SELECT 1) TO PROGRAM 'id'"):
        with as_job(pg, "job-pw") as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)


def test_the_job_role_can_swap_an_app_database_it_is_given_and_no_other(pg: Postgres, tmp_path: Path) -> None:
    assert create_role(pg, ["alpha", "beta-team"], "job-pw", tmp_path).returncode == 0
    with as_job(pg, "job-pw") as conn:
        conn.execute("CREATE DATABASE fresh_alpha OWNER openwebui_alpha")
        conn.execute("ALTER DATABASE fresh_alpha RENAME TO openwebui_alpha_swapped")
        conn.execute("DROP DATABASE openwebui_alpha_swapped WITH (FORCE)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE DATABASE fresh_gamma OWNER openwebui_gamma")


def test_rerunning_rotates_the_password_and_an_app_removed_from_the_list_loses_the_jobs_membership(
        pg: Postgres, tmp_path: Path) -> None:
    assert create_role(pg, ["alpha", "beta-team"], "first-pw", tmp_path).returncode == 0
    assert memberships(pg) == {"openwebui_alpha", "openwebui_beta_team"}
    assert create_role(pg, ["beta-team"], "rotated-pw", tmp_path).returncode == 0
    assert memberships(pg) == {"openwebui_beta_team"}
    as_job(pg, "rotated-pw").close()
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        as_job(pg, "first-pw")


def test_the_password_reaches_psql_through_the_environment_not_argv() -> None:
    argv = backup_role_command("/bootstrap/backup-role.sql")
    assert "BACKUP_DB_PASSWORD" not in " ".join(argv) and "password" not in " ".join(argv)
    assert r"\getenv password BACKUP_DB_PASSWORD" in BACKUP_ROLE_SQL
