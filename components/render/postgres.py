"""Per-app PostgreSQL roles and database: idempotent SQL run by psql on every deploy.

Every value arrives in psql's environment and is read with \\getenv (psql 15+), so neither the
script nor any process's argv holds a secret, and psql quotes identifiers (:"x") and literals (:'x').
"""
from __future__ import annotations

import json

from fleet_analytics.columns import COLUMNS_READ
from fleet_analytics.settings import App as AnalyticsApp
from fleet_backup.settings import App as BackupApp

APP_DATABASE_SQL = r"""\set ON_ERROR_STOP on
-- Errors name the statement's position, never echo its text (the passwords are in some).
\set VERBOSITY terse
\getenv role APP_ROLE
\getenv db APP_DB
\getenv password APP_DB_PASSWORD
\getenv analytics_role APP_ANALYTICS_ROLE
\getenv analytics_password APP_ANALYTICS_PASSWORD
\if :{?password}
\else
\set password ''
\endif
SELECT :'password' <> '' AS has_password \gset
\if :has_password
\else
DO $$ BEGIN RAISE EXCEPTION 'APP_DB_PASSWORD is not set: refusing to leave the app role without a password'; END $$;
\endif
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'role', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"role";
-- Other apps' roles (members of PUBLIC) must not reach this database.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";

-- The read-only analytics role: CONNECT to this database only (no TEMPORARY), SELECT on the app's tables.
SELECT format('CREATE ROLE %I LOGIN', :'analytics_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'analytics_role') \gexec
ALTER ROLE :"analytics_role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  NOINHERIT CONNECTION LIMIT 4 PASSWORD :'analytics_password';
-- Belts on top of the privileges: a report never holds the app's database for long.
ALTER ROLE :"analytics_role" SET default_transaction_read_only = on;
ALTER ROLE :"analytics_role" SET statement_timeout = '120s';
GRANT CONNECT ON DATABASE :"db" TO :"analytics_role";
\connect :"db"
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO :"analytics_role";
-- No table is readable by default (earlier versions granted SELECT on every new table): the columns
-- the report reads are granted by the app's analytics-grants step, after its migrations.
ALTER DEFAULT PRIVILEGES FOR ROLE :"role" IN SCHEMA public REVOKE ALL ON TABLES FROM :"analytics_role";
"""


def _analytics_grants_sql() -> str:
    allowed = ",\n       ".join(f"('{table}', '{column}')" for table, columns in COLUMNS_READ.items()
                                for column in columns)
    return rf"""\set ON_ERROR_STOP on
\set VERBOSITY terse
\getenv analytics_role APP_ANALYTICS_ROLE
-- Run as the app's role (the tables' owner) after its migrations: deny everything, then grant SELECT on
-- the report's columns (fleet_analytics/columns.py) of the tables that exist.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"analytics_role";
SELECT format('GRANT SELECT (%s) ON TABLE public.%I TO %I',
              string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum), c.relname, :'analytics_role')
  FROM pg_catalog.pg_class c
  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
  JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN (VALUES {allowed}) AS allowed (tbl, col) ON allowed.tbl = c.relname AND allowed.col = a.attname
 WHERE c.relkind IN ('r', 'p')
 GROUP BY c.relname \gexec
"""


ANALYTICS_GRANTS_SQL = _analytics_grants_sql()


# libpq's client settings in every replica's DATABASE_URL: a connection to a PostgreSQL that vanished is
# given up in about a minute (idle: keepalives; with data unacknowledged: tcp_user_timeout) instead of
# TCP's ~15, and a new one after 10 s instead of never.
CLIENT_TIMEOUTS = {"connect_timeout": "10", "keepalives": "1", "keepalives_idle": "30",
                   "keepalives_interval": "10", "keepalives_count": "3", "tcp_user_timeout": "60000"}


def client_timeouts_query() -> str:
    """CLIENT_TIMEOUTS as a postgresql:// URL's query (no leading `?`)."""
    return "&".join(f"{k}={v}" for k, v in CLIENT_TIMEOUTS.items())


def report_columns_json() -> str:
    """The report's columns as the backup job reads them (BACKUP_REPORT_COLUMNS): a restore grants them."""
    return json.dumps({table: list(columns) for table, columns in COLUMNS_READ.items()}, separators=(",", ":"))


def app_database(app: str) -> tuple[str, str]:
    """(role, database) of an app, named as the backup job names them (it dumps and restores them)."""
    named = BackupApp(app)
    return named.role, named.database


def app_analytics_role(app: str) -> str:
    """The app's read-only role for usage reports, named as fleet_analytics names it (it logs in as it)."""
    return AnalyticsApp(app).role


def app_database_command(app: str, script_path: str) -> list[str]:
    """psql command line for the bootstrap container; every value comes from its environment."""
    return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", script_path]


def app_database_env(app: str, host: str, port: int, admin_user: str) -> dict[str, str]:
    """Non-secret environment of the bootstrap container; the secrets are added beside it:
    PGPASSWORD (the admin's), APP_DB_PASSWORD and APP_ANALYTICS_PASSWORD."""
    role, db = app_database(app)
    return {"PGHOST": host, "PGPORT": str(port), "PGUSER": admin_user, "PGDATABASE": "postgres",
            "APP_ROLE": role, "APP_DB": db, "APP_ANALYTICS_ROLE": app_analytics_role(app),
            "PGCONNECT_TIMEOUT": "10"}


def analytics_grants_env(app: str, host: str, port: int) -> dict[str, str]:
    """Non-secret environment of the analytics-grants step, which logs in as the app's role (its
    PGPASSWORD, the app's, is added as a secret)."""
    role, db = app_database(app)
    return {"PGHOST": host, "PGPORT": str(port), "PGUSER": role, "PGDATABASE": db,
            "APP_ANALYTICS_ROLE": app_analytics_role(app), "PGCONNECT_TIMEOUT": "10"}


def postgres_server_command(settings: dict[str, str]) -> list[str]:
    """The postgres image's command: the server with each setting as `-c name=value`, sorted so an
    edit is one changed pair. Values are checked against components/config/postgres_settings.ALLOWED."""
    command = ["postgres"]
    for name, value in sorted(settings.items()):
        command += ["-c", f"{name}={value}"]
    return command


BACKUP_ROLE = "fleet_backup"

# The backup job's own login. It dumps and restores each app as the app's role (with that role's
# password), so its own role only creates, renames and drops app databases and ends their sessions:
# that takes CREATEDB and membership in each app role, never SUPERUSER or CREATEROLE. The password
# comes from the environment (\getenv), not from argv.
BACKUP_ROLE_SQL = r"""\set ON_ERROR_STOP on
\getenv password BACKUP_DB_PASSWORD
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER CREATEDB NOCREATEROLE INHERIT NOREPLICATION NOBYPASSRLS
  PASSWORD :'password';
SELECT format('GRANT %I TO %I', app, :'role')
  FROM unnest(string_to_array(:'app_roles', ',')) AS app \gexec
-- An app removed from the stack: its role stays (its data may be wanted), the job's reach goes.
SELECT format('REVOKE %I FROM %I', granted.rolname, :'role')
  FROM pg_auth_members m JOIN pg_roles granted ON granted.oid = m.roleid
  JOIN pg_roles member ON member.oid = m.member
 WHERE member.rolname = :'role' AND granted.rolname <> ALL (string_to_array(:'app_roles', ',')) \gexec
"""


def backup_role_command(script_path: str) -> list[str]:
    """psql command line for the backup role's one-shot container (passwords from its environment)."""
    return ["sh", "-c", 'exec psql -X -q -v ON_ERROR_STOP=1 -v role="$BACKUP_ROLE" -v app_roles="$APP_ROLES" '
                        f'-f {script_path}']


def backup_role_env(apps: list[str], host: str, port: int, admin_user: str) -> dict[str, str]:
    """Non-secret environment of that container (PGPASSWORD and BACKUP_DB_PASSWORD are added as secrets)."""
    return {"PGHOST": host, "PGPORT": str(port), "PGUSER": admin_user, "PGDATABASE": "postgres",
            "BACKUP_ROLE": BACKUP_ROLE, "APP_ROLES": ",".join(app_database(a)[0] for a in sorted(apps)),
            "PGCONNECT_TIMEOUT": "10"}
