"""pg_dump / pg_restore and the database swap; connection settings come from libpq's PG* env.

Two logins, never mixed: everything that reads or runs an app's own SQL (pg_dump, pg_restore, the row
counts) connects as that app's role with its password, so a function a tenant planted runs with the
tenant's rights and nothing more (SET ROLE would not do: RESET ROLE climbs back to the session user).
The job's own login (PG* in the environment) only creates, renames and drops whole databases, on the
`postgres` database, and never runs a statement inside an app database.
"""
from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

import psycopg
from psycopg import sql

from fleet_backup.errors import DUMP_FAILED, RESTORE_FAILED, RESTORE_REFUSED, JobError
from fleet_backup.settings import App

log = logging.getLogger("fleet_backup")


def app_login(app: App, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """libpq environment that logs in as the app's own role (the password stays out of argv)."""
    env = os.environ if env is None else env
    return {**env, "PGUSER": app.role, "PGPASSWORD": env[app.password_env], "PGDATABASE": app.database}


def _run(argv: list[str], code: int, what: str, env: Mapping[str, str] | None = None) -> str:
    # Passwords reach libpq via PGPASSWORD in the environment, never via argv.
    proc = subprocess.run(argv, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise JobError(code, f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-1500:]}")
    return proc.stdout


def client_version() -> str:
    return _run(["pg_dump", "--version"], DUMP_FAILED, "pg_dump --version").strip()


def _as_app(app: App, dbname: str | None = None) -> psycopg.Connection:
    """The app's own login; search_path pinned so no function of the app's shadows a built-in we call."""
    return psycopg.connect(user=app.role, password=os.environ[app.password_env], dbname=dbname or app.database,
                           options="-c search_path=pg_catalog", autocommit=True)


_TABLES = """SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
 ORDER BY 1, 2"""


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every table (ONLY: a parent's own rows), keyed "schema.table"."""
    counts = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        query = sql.SQL("SELECT pg_catalog.count(*) FROM ONLY {}").format(sql.Identifier(schema, table))
        counts[f"{schema}.{table}"] = conn.execute(query).fetchone()[0]
    return counts


def dump_database(app: App, dest: Path) -> dict[str, int]:
    """One custom-format archive and its tables' row counts, both read in one exported snapshot."""
    try:
        with _as_app(app) as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = conn.execute("SELECT pg_catalog.pg_export_snapshot()").fetchone()[0]
            counts = row_counts(conn)
            _run(["pg_dump", "--format=custom", "--compress=6", f"--snapshot={snapshot}", f"--file={dest}",
                  f"--dbname={app.database}"], DUMP_FAILED, f"pg_dump of {app.database}", app_login(app))
            conn.execute("COMMIT")
    except psycopg.Error as e:
        raise JobError(DUMP_FAILED, f"pg_dump of {app.database} failed: {str(e).strip()}") from None
    return counts


def dump_roles(dest: Path) -> None:
    """Role definitions without password hashes: deploy re-creates roles with their passwords."""
    _run(["pg_dumpall", "--roles-only", "--no-role-passwords", f"--file={dest}"],
         DUMP_FAILED, "pg_dumpall --roles-only")


def _admin() -> psycopg.Connection:
    return psycopg.connect(dbname="postgres", options="-c search_path=pg_catalog", autocommit=True)


def check_roles_exist(apps: list[App]) -> None:
    """Before touching anything: every app's role and its analytics role must exist (deploy creates them)."""
    with _admin() as conn:
        existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_roles")}
    missing = [r for a in apps for r in (a.role, a.analytics_role) if r not in existing]
    if missing:
        raise JobError(RESTORE_REFUSED, f"role(s) {', '.join(missing)} do not exist; run `pulumi up` first "
                                        "(it creates the app roles), then restore")


def _scratch_names(app: App) -> tuple[str, str]:
    tag = hashlib.sha256(app.database.encode()).hexdigest()[:10]
    return f"fleet_restore_{tag}", f"fleet_replaced_{tag}"


def _restore_into(app: App, dump: Path, target: str) -> None:
    """Create `target` for the app as deploy would, and pg_restore into it as the app's role."""
    ident = sql.Identifier
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(target)))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0")
                     .format(ident(target), ident(app.role)))
        # As deploy leaves an app database: other apps' roles (members of PUBLIC) cannot connect.
        conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(ident(target)))
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(ident(target), ident(app.role)))
    try:
        _run(["pg_restore", f"--dbname={target}", "--no-owner",
              # Not the dump's grants: an older deploy's may be wider (SELECT on every table); the
              # restore grants what deploy grants today (grant_report_columns).
              "--no-privileges", "--exit-on-error", "--single-transaction",
              str(dump)], RESTORE_FAILED, f"pg_restore of {app.database}", app_login(app))
    except JobError:
        drop_database(target)
        raise


def grant_report_columns(app: App, target: str, columns: Mapping[str, tuple[str, ...]]) -> None:
    """What deploy gives the app's analytics role, on `target`: CONNECT, USAGE on schema public and SELECT
    on the report's columns of the tables that exist; nothing else (pg_restore ran with --no-privileges).

    CONNECT is granted by the job's login (a member of the database's owner); the rest as the app's role.
    """
    ident, analytics = sql.Identifier, sql.Identifier(app.analytics_role)
    try:
        with _admin() as conn:
            conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(ident(target), analytics))
        with _as_app(app, target) as conn, conn.transaction():
            conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            conn.execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(analytics))
            existing = conn.execute(
                "SELECT c.relname::text, a.attname::text FROM pg_catalog.pg_class c"
                "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'"
                "  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
                " WHERE c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum").fetchall()
            granted: dict[str, list[str]] = {}
            for table, column in existing:
                if column in columns.get(table, ()):
                    granted.setdefault(table, []).append(column)
            for table, cols in granted.items():
                conn.execute(sql.SQL("GRANT SELECT ({}) ON TABLE {} TO {}").format(
                    sql.SQL(", ").join(map(ident, cols)), ident("public", table), analytics))
    except psycopg.Error as e:
        raise JobError(RESTORE_FAILED, f"granting {app.analytics_role} the report's columns of the restored "
                                       f"{app.database} failed: {str(e).strip()}") from None


def drop_database(name: str) -> None:
    with _admin() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def restore_database(app: App, dump: Path, report_columns: Mapping[str, tuple[str, ...]]) -> None:
    """Restore into a fresh database, then swap it in: the live one is untouched until that succeeds.

    A fresh database (rather than pg_restore --clean) also removes tables created after the backup,
    so the result equals the backup exactly. pg_restore logs in as the app's role, so every object
    is owned by it and any function the dump runs (a CHECK, a default) has only the app's rights.
    """
    fresh, replaced = _scratch_names(app)
    ident = sql.Identifier
    _restore_into(app, dump, fresh)
    try:
        grant_report_columns(app, fresh, report_columns)
    except JobError:
        drop_database(fresh)
        raise
    with _admin() as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (app.database,)).fetchone()
        if exists:
            # Block new sessions, end current ones (waiting up to 10 s each), then rename it away.
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident(app.database)))
            conn.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (app.database,))
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident(replaced)))
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(app.database), ident(replaced)))
        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(ident(fresh), ident(app.database)))
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(ident(replaced)))


def verify_database(app: App, dump: Path) -> dict[str, int]:
    """Restore into a scratch database (never the live one), count its rows, drop it; returns the counts."""
    scratch = "fleet_verify_" + hashlib.sha256(app.database.encode()).hexdigest()[:10]
    _restore_into(app, dump, scratch)
    try:
        with _as_app(app, scratch) as conn:
            return row_counts(conn)
    except psycopg.Error as e:
        raise JobError(RESTORE_FAILED, f"counting rows of {app.database}'s scratch copy failed: {e}") from None
    finally:
        drop_database(scratch)
