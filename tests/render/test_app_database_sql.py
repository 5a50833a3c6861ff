"""The per-app role/database bootstrap, run by the real psql against a real PostgreSQL."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.render.postgres import (ANALYTICS_GRANTS_SQL, APP_DATABASE_SQL, analytics_grants_env,
                                        app_analytics_role, app_database, app_database_command,
                                        app_database_env)
from realservices import Postgres, postgres_server, require_binary


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def bootstrap(pg: Postgres, app: str, password: str, tmp_path: Path,
              analytics_password: str = "analytics-password") -> subprocess.CompletedProcess[str]:
    """Exactly what the bootstrap container runs: the rendered command, script and environment."""
    require_binary("psql")
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {**os.environ, **app_database_env(app, pg.host, pg.port, pg.superuser),
           "PGPASSWORD": pg.password, "APP_DB_PASSWORD": password, "APP_ANALYTICS_PASSWORD": analytics_password}
    return subprocess.run(app_database_command(app, str(script)), env=env, text=True, capture_output=True)


def grant_analytics(pg: Postgres, app: str, password: str, tmp_path: Path) -> None:
    """The analytics-grants step as its container runs it: psql as the app's role, after migrations."""
    script = tmp_path / "analytics-grants.sql"
    script.write_text(ANALYTICS_GRANTS_SQL)
    env = {**os.environ, **analytics_grants_env(app, pg.host, pg.port), "PGPASSWORD": password}
    result = subprocess.run([require_binary("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)],
                            env=env, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr


def connect(pg: Postgres, app: str, password: str, dbname: str | None = None) -> psycopg.Connection:
    role, db = app_database(app)
    return psycopg.connect(host=pg.host, port=pg.port, user=role, password=password,
                           dbname=dbname or db, autocommit=True)


def test_bootstrap_creates_role_and_database_the_app_can_use(pg: Postgres, tmp_path: Path) -> None:
    result = bootstrap(pg, "chat", "s3cret 'with quotes' & spaces", tmp_path)
    assert result.returncode == 0, result.stderr
    with connect(pg, "chat", "s3cret 'with quotes' & spaces") as conn:
        conn.execute("CREATE TABLE chat_probe (id serial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO chat_probe (body) VALUES ('hello')")
        assert conn.execute("SELECT count(*) FROM chat_probe").fetchone() == (1,)


def test_bootstrap_is_idempotent_and_applies_a_new_password(pg: Postgres, tmp_path: Path) -> None:
    for password in ("first-password", "first-password", "rotated-password"):
        result = bootstrap(pg, "twice", password, tmp_path)
        assert result.returncode == 0, result.stderr
    with connect(pg, "twice", "rotated-password") as conn:
        assert conn.execute("SELECT current_user, current_database()").fetchone() == ("openwebui_twice",) * 2
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect(pg, "twice", "first-password")


def test_one_apps_role_cannot_reach_another_apps_database(pg: Postgres, tmp_path: Path) -> None:
    assert bootstrap(pg, "alpha", "alpha-password", tmp_path).returncode == 0
    assert bootstrap(pg, "beta-team", "beta-password", tmp_path).returncode == 0
    with connect(pg, "alpha", "alpha-password") as conn:
        conn.execute("CREATE TABLE private_notes (note text)")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect(pg, "beta-team", "beta-password", dbname="openwebui_alpha")
    with connect(pg, "beta-team", "beta-password") as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("openwebui_beta_team",)


def test_bootstrap_fails_loudly_with_a_wrong_admin_password(pg: Postgres, tmp_path: Path) -> None:
    require_binary("psql")
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {**os.environ, **app_database_env("gamma", pg.host, pg.port, pg.superuser),
           "PGPASSWORD": "not-the-password", "APP_DB_PASSWORD": "x", "APP_ANALYTICS_PASSWORD": "y"}
    result = subprocess.run(app_database_command("gamma", str(script)), env=env, text=True, capture_output=True)
    assert result.returncode != 0 and "password authentication failed" in result.stderr


def test_no_password_reaches_any_process_argv(pg: Postgres, tmp_path: Path) -> None:
    """A psql shim on PATH records the argv the bootstrap command really gives psql."""
    real_psql = require_binary("psql")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    argv_log = tmp_path / "argv"
    (shim_dir / "psql").write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" >> {argv_log}\nexec {real_psql} "$@"\n')
    (shim_dir / "psql").chmod(0o755)
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {**os.environ, **app_database_env("argv", pg.host, pg.port, pg.superuser),
           "PATH": f"{shim_dir}:{os.environ['PATH']}",
           "PGPASSWORD": pg.password, "APP_DB_PASSWORD": "app-pw-7f3a", "APP_ANALYTICS_PASSWORD": "ro-pw-9c1e"}
    result = subprocess.run(app_database_command("argv", str(script)), env=env, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    recorded = argv_log.read_text()
    assert "psql" in recorded
    for secret in ("app-pw-7f3a", "ro-pw-9c1e", pg.password):
        assert secret not in recorded


def connect_analytics(pg: Postgres, app: str, password: str, dbname: str | None = None) -> psycopg.Connection:
    return psycopg.connect(host=pg.host, port=pg.port, user=app_analytics_role(app), password=password,
                           dbname=dbname or app_database(app)[1], autocommit=True)


# A sketch of Open WebUI's tables: the columns the report reads, and ones it must never read.
MIGRATIONS = ["CREATE TABLE chat_message (id text, content text, role text, model_id text, created_at bigint, "
              "usage json, user_id text)",
              "CREATE TABLE auth (id text, password text)",
              'CREATE TABLE "user" (id text, name text, email text, settings text)',
              "INSERT INTO chat_message VALUES ('m1', 'secret words', 'user', NULL, 5, NULL, 'u1')"]


def test_analytics_role_reads_nothing_until_the_grants_step_then_only_the_reports_columns(
        pg: Postgres, tmp_path: Path) -> None:
    assert bootstrap(pg, "reads", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "reads", "app-pw") as conn:  # the migrating replica
        for statement in MIGRATIONS:
            conn.execute(statement)
    with connect_analytics(pg, "reads", "ro-pw") as ro:
        for query in ("SELECT role FROM chat_message", "SELECT password FROM auth", 'SELECT id FROM "user"'):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute(query)
    grant_analytics(pg, "reads", "app-pw", tmp_path)
    with connect(pg, "reads", "app-pw") as conn:  # a table a later migration adds
        conn.execute("CREATE TABLE oauth_session (id text, access_token text)")
    with connect_analytics(pg, "reads", "ro-pw") as ro:
        assert ro.execute("SELECT role, created_at, user_id FROM chat_message").fetchall() == [("user", 5, "u1")]
        assert ro.execute('SELECT count(*) FROM "user"').fetchone() == (0,)
        for query in ("SELECT content FROM chat_message", "SELECT * FROM chat_message", "SELECT password FROM auth",
                      'SELECT settings FROM "user"', "SELECT access_token FROM oauth_session"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute(query)


def test_the_grants_step_takes_back_what_earlier_versions_granted(pg: Postgres, tmp_path: Path) -> None:
    """Earlier bootstraps granted SELECT on every table, and by default on new ones."""
    assert bootstrap(pg, "upgraded", "app-pw", tmp_path, "ro-pw").returncode == 0
    role, analytics = app_database("upgraded")[0], app_analytics_role("upgraded")
    with psycopg.connect(pg.dsn(dbname=app_database("upgraded")[1]), autocommit=True) as admin:
        admin.execute(f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA public GRANT SELECT ON TABLES TO {analytics}")
    with connect(pg, "upgraded", "app-pw") as conn:
        for statement in MIGRATIONS:
            conn.execute(statement)
    assert bootstrap(pg, "upgraded", "app-pw", tmp_path, "ro-pw").returncode == 0
    grant_analytics(pg, "upgraded", "app-pw", tmp_path)
    with connect(pg, "upgraded", "app-pw") as conn:
        conn.execute("CREATE TABLE api_key (id text, key text)")
    with connect_analytics(pg, "upgraded", "ro-pw") as ro:
        assert ro.execute("SELECT role FROM chat_message").fetchall() == [("user",)]
        for query in ("SELECT content FROM chat_message", "SELECT password FROM auth", "SELECT key FROM api_key"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                ro.execute(query)


@pytest.mark.parametrize("statement", [
    "INSERT INTO knowledge VALUES (9)",
    "UPDATE knowledge SET created_at = 0",
    "DELETE FROM knowledge",
    "TRUNCATE knowledge",
    "CREATE TABLE mine (n int)",
    "CREATE SCHEMA mine",
    "ALTER TABLE knowledge ADD COLUMN x int",
    "DROP TABLE knowledge",
    "CREATE INDEX ON knowledge (created_at)",
    "CREATE TEMP TABLE scratch (n int)",
])
def test_analytics_role_cannot_write_or_change_the_schema(pg: Postgres, tmp_path: Path, statement: str) -> None:
    assert bootstrap(pg, "nowrite", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "nowrite", "app-pw") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS knowledge (created_at int)")
        conn.execute("TRUNCATE knowledge")
        conn.execute("INSERT INTO knowledge VALUES (1)")
    grant_analytics(pg, "nowrite", "app-pw", tmp_path)
    with connect_analytics(pg, "nowrite", "ro-pw") as ro:
        assert ro.execute("SELECT created_at FROM knowledge").fetchall() == [(1,)]  # it reads it
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # the default, a belt only
            ro.execute(statement)
        ro.execute("SET default_transaction_read_only = off")  # any session may: privileges must hold
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute(statement)
    with connect(pg, "nowrite", "app-pw") as conn:
        assert conn.execute("SELECT array_agg(created_at) FROM knowledge").fetchone() == ([1],)
        assert conn.execute("SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'knowledge'").fetchone() == (1,)


def test_analytics_role_cannot_connect_to_another_apps_database(pg: Postgres, tmp_path: Path) -> None:
    assert bootstrap(pg, "mine", "mine-pw", tmp_path, "mine-ro").returncode == 0
    assert bootstrap(pg, "other-app", "other-pw", tmp_path, "other-ro").returncode == 0
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_analytics(pg, "mine", "mine-ro", dbname="openwebui_other_app")
    with connect_analytics(pg, "mine", "mine-ro") as ro:
        assert ro.execute("SELECT current_user, current_database()").fetchone() == (
            "openwebui_mine_analytics", "openwebui_mine")


def test_analytics_password_is_rotated_by_the_next_bootstrap(pg: Postgres, tmp_path: Path) -> None:
    for ro_password in ("ro-first", "ro-first", "ro-rotated"):
        assert bootstrap(pg, "rotate", "app-pw", tmp_path, ro_password).returncode == 0
    with connect_analytics(pg, "rotate", "ro-rotated") as ro:
        assert ro.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_analytics(pg, "rotate", "ro-first")


def test_the_app_password_never_reaches_psqls_argv(pg: Postgres, tmp_path: Path) -> None:
    """`ps` on the shared node shows every process's argv: psql must read the password from its env."""
    psql = require_binary("psql")
    shim_dir = tmp_path / "bin"
    shim_dir.mkdir()
    argv_log = tmp_path / "psql-argv"
    shim = shim_dir / "psql"
    shim.write_text(f'#!/bin/sh\nprintf "%s\\n" "$0" "$@" > {argv_log}\nexec {psql} "$@"\n')
    shim.chmod(0o755)
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    password = "argv-probe-password-7f3a"
    env = {**os.environ, **app_database_env("argv", pg.host, pg.port, pg.superuser),
           "PATH": f"{shim_dir}:{os.environ['PATH']}", "PGPASSWORD": pg.password, "APP_DB_PASSWORD": password,
           "APP_ANALYTICS_PASSWORD": "ro-" + password}
    result = subprocess.run(app_database_command("argv", str(script)), env=env, text=True, capture_output=True)
    assert result.returncode == 0, result.stderr
    assert argv_log.read_text().startswith(str(shim)), "the shim did not run"
    assert password not in argv_log.read_text()
    assert password not in result.stdout + result.stderr
    with connect(pg, "argv", password) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("openwebui_argv",)


def test_bootstrap_refuses_to_run_without_the_app_password(pg: Postgres, tmp_path: Path) -> None:
    require_binary("psql")
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {k: v for k, v in os.environ.items() if k != "APP_DB_PASSWORD"}
    env |= {**app_database_env("nopw", pg.host, pg.port, pg.superuser), "PGPASSWORD": pg.password}
    result = subprocess.run(app_database_command("nopw", str(script)), env=env, text=True, capture_output=True)
    assert result.returncode != 0
    assert "APP_DB_PASSWORD" in result.stderr
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_roles WHERE rolname = 'openwebui_nopw'").fetchone() == (0,)
