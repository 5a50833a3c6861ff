"""The per-app role/database bootstrap, run by the real psql against a real PostgreSQL."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.render.postgres import (APP_DATABASE_SQL, app_analytics_role, app_database,
                                        app_database_command, app_database_env)
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


def test_analytics_role_reads_tables_the_app_creates_before_and_after_the_bootstrap(
        pg: Postgres, tmp_path: Path) -> None:
    assert bootstrap(pg, "reads", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "reads", "app-pw") as conn:
        conn.execute("CREATE TABLE before_rerun (n int)")
        conn.execute("INSERT INTO before_rerun VALUES (1)")
    assert bootstrap(pg, "reads", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "reads", "app-pw") as conn:  # a later migration: default privileges cover it
        conn.execute("CREATE TABLE after_rerun (n int)")
        conn.execute("INSERT INTO after_rerun VALUES (2), (3)")
    with connect_analytics(pg, "reads", "ro-pw") as ro:
        assert ro.execute("SELECT count(*) FROM before_rerun").fetchone() == (1,)
        assert ro.execute("SELECT sum(n) FROM after_rerun").fetchone() == (5,)


@pytest.mark.parametrize("statement", [
    "INSERT INTO usage VALUES (9)",
    "UPDATE usage SET n = 0",
    "DELETE FROM usage",
    "TRUNCATE usage",
    "CREATE TABLE mine (n int)",
    "CREATE SCHEMA mine",
    "ALTER TABLE usage ADD COLUMN x int",
    "DROP TABLE usage",
    "CREATE INDEX ON usage (n)",
    "CREATE TEMP TABLE scratch (n int)",
])
def test_analytics_role_cannot_write_or_change_the_schema(pg: Postgres, tmp_path: Path, statement: str) -> None:
    assert bootstrap(pg, "nowrite", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "nowrite", "app-pw") as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS usage (n int)")
        conn.execute("TRUNCATE usage")
        conn.execute("INSERT INTO usage VALUES (1)")
    with connect_analytics(pg, "nowrite", "ro-pw") as ro:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):  # the default, a belt only
            ro.execute(statement)
        ro.execute("SET default_transaction_read_only = off")  # any session may: privileges must hold
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute(statement)
    with connect(pg, "nowrite", "app-pw") as conn:
        assert conn.execute("SELECT array_agg(n) FROM usage").fetchone() == ([1],)
        assert conn.execute("SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'usage'").fetchone() == (1,)


def test_analytics_role_cannot_read_credential_tables(pg: Postgres, tmp_path: Path) -> None:
    assert bootstrap(pg, "creds", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect(pg, "creds", "app-pw") as conn:
        conn.execute("CREATE TABLE auth (id text, password text)")
        conn.execute("CREATE TABLE chat_message (id text)")
    # Open WebUI's migrations run after the first bootstrap; the next deploy's bootstrap revokes.
    assert bootstrap(pg, "creds", "app-pw", tmp_path, "ro-pw").returncode == 0
    with connect_analytics(pg, "creds", "ro-pw") as ro:
        assert ro.execute("SELECT count(*) FROM chat_message").fetchone() == (0,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            ro.execute("SELECT * FROM auth")


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
