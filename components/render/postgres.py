"""Per-app PostgreSQL role and database: idempotent SQL run by psql on every deploy.

Values arrive as psql variables (-v role=... -v db=... -v password=...), so the script holds no
secret and psql quotes identifiers (:"x") and literals (:'x') itself.
"""
from __future__ import annotations

from fleet_backup.settings import App as BackupApp

APP_DATABASE_SQL = r"""\set ON_ERROR_STOP on
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD :'password';
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'db', :'role', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
ALTER DATABASE :"db" OWNER TO :"role";
-- Other apps' roles (members of PUBLIC) must not reach this database.
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
"""


def app_database(app: str) -> tuple[str, str]:
    """(role, database) of an app, named as the backup job names them (it dumps and restores them)."""
    named = BackupApp(app)
    return named.role, named.database


def app_database_command(app: str, script_path: str) -> list[str]:
    """psql command line for the bootstrap container; the passwords come from its environment
    (PGPASSWORD for the admin, APP_DB_PASSWORD for the app role)."""
    role, db = app_database(app)
    return ["sh", "-c",
            'exec psql -X -q -v ON_ERROR_STOP=1 -v role="$APP_ROLE" -v db="$APP_DB" '
            f'-v password="$APP_DB_PASSWORD" -f {script_path}']


def app_database_env(app: str, host: str, port: int, admin_user: str) -> dict[str, str]:
    """Non-secret environment of the bootstrap container (the passwords are added as secrets)."""
    role, db = app_database(app)
    return {"PGHOST": host, "PGPORT": str(port), "PGUSER": admin_user, "PGDATABASE": "postgres",
            "APP_ROLE": role, "APP_DB": db, "PGCONNECT_TIMEOUT": "10"}
