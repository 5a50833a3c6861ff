"""The job's configuration, read once from the environment."""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fleet_backup.errors import CONFIG, JobError

APP_NAME = re.compile(r"^[a-z][a-z0-9-]*$")


@dataclass(frozen=True)
class App:
    name: str

    @property
    def database(self) -> str:
        return "openwebui_" + self.name.replace("-", "_")

    @property
    def role(self) -> str:
        return self.database

    @property
    def collection_prefix(self) -> str:
        return self.name + "_"  # Open WebUI names collections <QDRANT_COLLECTION_PREFIX>_<name>


@dataclass(frozen=True)
class Settings:
    stack: str
    bucket: str
    endpoint: str | None
    region: str
    prefix: str
    apps: tuple[App, ...]
    qdrant_url: str | None
    lock_file: str
    lock_stale_seconds: int
    work_dir: str | None

    @staticmethod
    def require_postgres(env: Mapping[str, str] | None = None) -> None:
        """backup/restore need the admin connection; libpq reads these variables itself."""
        env = os.environ if env is None else env
        for name in ("PGHOST", "PGUSER"):
            if not env.get(name, "").strip():
                raise JobError(CONFIG, f"{name} is not set; backup and restore need the PostgreSQL admin login")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise JobError(CONFIG, f"{name} is not set; see `python -m fleet_backup --help`")
            return value

        stack = required("BACKUP_STACK")
        if not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]*$", stack):
            raise JobError(CONFIG, f"BACKUP_STACK={stack!r} may only hold letters, digits, '.', '_', '-'")
        apps = tuple(App(a.strip()) for a in required("BACKUP_APPS").split(",") if a.strip())
        for app in apps:
            if not APP_NAME.match(app.name) or len(app.database) > 63:
                raise JobError(CONFIG, f"BACKUP_APPS: {app.name!r} is not an app name "
                                       "([a-z][a-z0-9-]*, at most 53 characters)")
        if len({a.database for a in apps}) != len(apps):
            raise JobError(CONFIG, "BACKUP_APPS lists an app twice (or two names that map to one database)")
        prefix = env.get("BACKUP_S3_PREFIX") or f"backups/{stack}/"
        if not prefix.endswith("/") or prefix.startswith("/"):
            raise JobError(CONFIG, f"BACKUP_S3_PREFIX={prefix!r} must look like 'backups/<stack>/'")
        stale = env.get("BACKUP_LOCK_STALE_SECONDS", "21600")
        if not stale.isdigit() or int(stale) <= 0:
            raise JobError(CONFIG, f"BACKUP_LOCK_STALE_SECONDS={stale!r} must be a positive integer")
        return cls(
            stack=stack,
            bucket=required("BACKUP_S3_BUCKET"),
            endpoint=env.get("BACKUP_S3_ENDPOINT") or None,
            region=env.get("BACKUP_S3_REGION") or "us-east-1",
            prefix=prefix,
            apps=apps,
            qdrant_url=(env.get("QDRANT_URL") or "").rstrip("/") or None,
            lock_file=env.get("BACKUP_LOCK_FILE") or "/var/lock/fleet-backup.lock",
            lock_stale_seconds=int(stale),
            work_dir=env.get("BACKUP_WORK_DIR") or None,
        )
