"""The per-app role/database bootstrap, run by the real psql against a real PostgreSQL."""
from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from components.render.postgres import (APP_DATABASE_SQL, app_database, app_database_command,
                                        app_database_env)
from realservices import Postgres, postgres_server, require_binary


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with postgres_server() as server:
        yield server


def bootstrap(pg: Postgres, app: str, password: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Exactly what the bootstrap container runs: the rendered command, script and environment."""
    require_binary("psql")
    script = tmp_path / "app-database.sql"
    script.write_text(APP_DATABASE_SQL)
    env = {**os.environ, **app_database_env(app, pg.host, pg.port, pg.superuser),
           "PGPASSWORD": pg.password, "APP_DB_PASSWORD": password}
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
           "PGPASSWORD": "not-the-password", "APP_DB_PASSWORD": "x"}
    result = subprocess.run(app_database_command("gamma", str(script)), env=env, text=True, capture_output=True)
    assert result.returncode != 0 and "password authentication failed" in result.stderr


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
           "PATH": f"{shim_dir}:{os.environ['PATH']}", "PGPASSWORD": pg.password, "APP_DB_PASSWORD": password}
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
