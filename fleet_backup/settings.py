"""The job's configuration, read once from the environment."""
from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from fleet_backup.errors import CONFIG, JobError

APP_NAME = re.compile(r"[a-z][a-z0-9-]*")  # always fullmatch: '$' would let a trailing newline through
# http(s)://host[:port][/path]; no user:password (credentials come in their own variables), no spaces.
_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[^\s@]*)?")


def _url(env: Mapping[str, str], name: str) -> str | None:
    """An endpoint URL, or None if unset; the value is not echoed: a mistaken one may hold a password."""
    value = (env.get(name) or "").strip()
    if not value:
        return None
    if not _URL.fullmatch(value):
        raise JobError(CONFIG, f"{name} must be an http(s) URL like http://host:port, without user:password "
                               "(credentials go in their own variables); the value is not shown")
    return value


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
    def analytics_role(self) -> str:
        """The app's read-only report role (fleet_analytics names it alike); a restore re-grants it."""
        return self.database + "_analytics"

    @property
    def password_env(self) -> str:
        """The variable holding the app role's own password: its dump and restore run as that role."""
        return "APP_DB_PASSWORD_" + self.name.upper().replace("-", "_")

    @property
    def collection_prefix(self) -> str:
        return self.name + "_"  # Open WebUI names collections <QDRANT_COLLECTION_PREFIX>_<name>


FILES_CREDENTIALS = ("FILES_AWS_ACCESS_KEY_ID", "FILES_AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class FilesSource:
    """The object storage Open WebUI keeps uploads in; each app owns the keys under its prefix."""
    bucket: str
    endpoint: str | None
    region: str
    prefix_template: str

    def prefix(self, app: App) -> str:
        return self.prefix_template.replace("{app}", app.name)


COPY_CREDENTIALS = ("BACKUP_COPY_AWS_ACCESS_KEY_ID", "BACKUP_COPY_AWS_SECRET_ACCESS_KEY")


@dataclass(frozen=True)
class CopyTarget:
    """The second bucket every run is copied to (another store or region); keys in BACKUP_COPY_AWS_*."""
    bucket: str
    endpoint: str | None
    region: str


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
    files: FilesSource | None = None
    state_file: str = "/var/lib/fleet-backup/state.json"
    keep_last: int | None = None
    metrics_address: str = "0.0.0.0"
    metrics_port: int | None = None
    copy_to: CopyTarget | None = None
    object_lock: bool = False
    file_workers: int = 8
    # table -> columns the analytics role may SELECT (fleet_analytics/columns.py, passed by the program).
    report_columns: Mapping[str, tuple[str, ...]] | None = None

    def require_postgres(self, env: Mapping[str, str] | None = None) -> None:
        """backup/restore need the job's own login and each app role's; libpq reads PG* itself."""
        env = os.environ if env is None else env
        for name in ("PGHOST", "PGUSER"):
            if not env.get(name, "").strip():
                raise JobError(CONFIG, f"{name} is not set; backup and restore need the job's PostgreSQL login")
        missing = [a.password_env for a in self.apps if not env.get(a.password_env)]
        if missing:
            raise JobError(CONFIG, f"{', '.join(missing)} not set: each app's dump and restore run as the app's "
                                   "own database role, with its password")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            value = env.get(name, "").strip()
            if not value:
                raise JobError(CONFIG, f"{name} is not set; see `python -m fleet_backup --help`")
            return value

        stack = required("BACKUP_STACK")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stack):
            raise JobError(CONFIG, f"BACKUP_STACK={stack!r} may only hold letters, digits, '.', '_', '-'")
        apps = tuple(App(a.strip()) for a in required("BACKUP_APPS").split(",") if a.strip())
        for app in apps:
            if not APP_NAME.fullmatch(app.name) or len(app.database) > 63:
                raise JobError(CONFIG, f"BACKUP_APPS: {app.name!r} is not an app name "
                                       "([a-z][a-z0-9-]*, at most 53 characters)")
        if len({a.database for a in apps}) != len(apps):
            raise JobError(CONFIG, "BACKUP_APPS lists an app twice (or two names that map to one database)")
        prefix = env.get("BACKUP_S3_PREFIX") or f"backups/{stack}/"
        if not prefix.endswith("/") or prefix.startswith("/") or ".." in prefix.split("/"):
            raise JobError(CONFIG, f"BACKUP_S3_PREFIX={prefix!r} must look like 'backups/<stack>/'")
        stale = env.get("BACKUP_LOCK_STALE_SECONDS", "21600")
        if not stale.isdigit() or int(stale) <= 0:
            raise JobError(CONFIG, f"BACKUP_LOCK_STALE_SECONDS={stale!r} must be a positive integer")
        keep_last = env.get("BACKUP_KEEP_LAST", "").strip()
        if keep_last and not (keep_last.isdigit() and int(keep_last) > 0):
            raise JobError(CONFIG, f"BACKUP_KEEP_LAST={keep_last!r} must be a positive integer (runs to keep)")
        metrics_port = env.get("BACKUP_METRICS_PORT", "").strip()
        if metrics_port and not (metrics_port.isdigit() and 0 < int(metrics_port) < 65536):
            raise JobError(CONFIG, f"BACKUP_METRICS_PORT={metrics_port!r} must be a TCP port (1-65535)")
        _url(env, "BACKUP_WEBHOOK_URL")  # checked here, read where it is used: a secret stays out of Settings
        files = _files_source(env)
        bucket = required("BACKUP_S3_BUCKET")
        endpoint = _url(env, "BACKUP_S3_ENDPOINT")
        if files and (files.bucket, files.endpoint) == (bucket, endpoint):
            # One bucket for both: an app prefix overlapping the backups would copy (or prune) backups.
            for app in apps:
                p = files.prefix(app)
                if p.startswith(prefix) or prefix.startswith(p):
                    raise JobError(CONFIG, f"FILES_S3_PREFIX_TEMPLATE gives {p!r} for app {app.name}, which "
                                           f"overlaps BACKUP_S3_PREFIX {prefix!r} in the same bucket")
        return cls(
            stack=stack,
            bucket=bucket,
            endpoint=endpoint,
            region=env.get("BACKUP_S3_REGION") or "us-east-1",
            prefix=prefix,
            apps=apps,
            qdrant_url=(_url(env, "QDRANT_URL") or "").rstrip("/") or None,
            lock_file=env.get("BACKUP_LOCK_FILE") or "/var/lock/fleet-backup.lock",
            lock_stale_seconds=int(stale),
            work_dir=env.get("BACKUP_WORK_DIR") or None,
            files=files,
            state_file=env.get("BACKUP_STATE_FILE") or "/var/lib/fleet-backup/state.json",
            keep_last=int(keep_last) if keep_last else None,
            metrics_address=env.get("BACKUP_METRICS_ADDRESS") or "0.0.0.0",
            metrics_port=int(metrics_port) if metrics_port else None,
            copy_to=_copy_target(env, bucket, endpoint),
            object_lock=_flag(env, "BACKUP_S3_OBJECT_LOCK"),
            file_workers=_workers(env),
            report_columns=_report_columns(env),
        )


def signing_key(env: Mapping[str, str] | None = None) -> bytes:
    """BACKUP_SIGNING_KEY: signs each run's manifest; kept in stack secrets, never in the bucket."""
    env = os.environ if env is None else env
    key = env.get("BACKUP_SIGNING_KEY", "")
    if len(key) < 32:
        raise JobError(CONFIG, "BACKUP_SIGNING_KEY is " + ("not set" if not key else "shorter than 32 characters")
                       + "; it signs every manifest (a stack secret, the same for backup and restore)")
    return key.encode()


def encryption_key(env: Mapping[str, str] | None = None) -> bytes | None:
    """BACKUP_ENCRYPTION_KEY (optional): every object is encrypted with a key derived from it."""
    env = os.environ if env is None else env
    secret = env.get("BACKUP_ENCRYPTION_KEY", "")
    if not secret:
        return None
    if len(secret) < 32:
        raise JobError(CONFIG, "BACKUP_ENCRYPTION_KEY is shorter than 32 characters; use a long random secret")
    from fleet_backup.crypto import derive_key
    return derive_key(secret)


MAX_FILE_WORKERS = 64


_IDENT = re.compile(r"[a-z_][a-z0-9_]*")


def _report_columns(env: Mapping[str, str]) -> dict[str, tuple[str, ...]] | None:
    """BACKUP_REPORT_COLUMNS: {"table": ["column", ...]}, the columns a restore grants the analytics role."""
    value = env.get("BACKUP_REPORT_COLUMNS", "").strip()
    if not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not (isinstance(parsed, dict) and parsed and all(
            isinstance(t, str) and _IDENT.fullmatch(t) and isinstance(cs, list) and cs
            and all(isinstance(c, str) and _IDENT.fullmatch(c) for c in cs) for t, cs in parsed.items())):
        raise JobError(CONFIG, 'BACKUP_REPORT_COLUMNS must be JSON like {"chat": ["created_at"]}: '
                               "lower-case table and column names (the program sets it)")
    return {t: tuple(cs) for t, cs in parsed.items()}


def _workers(env: Mapping[str, str]) -> int:
    value = env.get("BACKUP_FILE_WORKERS", "8").strip()
    if not (value.isdigit() and 1 <= int(value) <= MAX_FILE_WORKERS):
        raise JobError(CONFIG, f"BACKUP_FILE_WORKERS={value!r} must be a whole number from 1 to {MAX_FILE_WORKERS}")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = env.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise JobError(CONFIG, f"{name}={value!r} must be true or false")
    return value == "true"


def _copy_target(env: Mapping[str, str], bucket: str, endpoint: str | None) -> CopyTarget | None:
    copy_bucket = env.get("BACKUP_COPY_S3_BUCKET", "").strip()
    if not copy_bucket:
        return None
    given = [n for n in COPY_CREDENTIALS if env.get(n)]
    if len(given) == 1:
        raise JobError(CONFIG, f"{given[0]} is set but not the other of {', '.join(COPY_CREDENTIALS)}; set both, "
                               "or neither (boto3's default credential chain)")
    target = CopyTarget(copy_bucket, _url(env, "BACKUP_COPY_S3_ENDPOINT"), env.get("BACKUP_COPY_S3_REGION") or "us-east-1")
    if (target.bucket, target.endpoint) == (bucket, endpoint):
        raise JobError(CONFIG, "BACKUP_COPY_S3_BUCKET is the backup bucket itself; the copy must go elsewhere")
    return target


def _files_source(env: Mapping[str, str]) -> FilesSource | None:
    """FILES_S3_* (None without FILES_S3_BUCKET); credentials are only checked for presence here."""
    bucket = env.get("FILES_S3_BUCKET", "").strip()
    if not bucket:
        stray = sorted(n for n in ("FILES_S3_ENDPOINT", "FILES_S3_PREFIX_TEMPLATE", *FILES_CREDENTIALS)
                       if env.get(n))
        if stray:
            raise JobError(CONFIG, f"{', '.join(stray)} set but FILES_S3_BUCKET is not; set it to back up "
                                   "the apps' uploaded files, or unset the others")
        return None
    given = [n for n in FILES_CREDENTIALS if env.get(n)]
    if len(given) == 1:
        missing = next(n for n in FILES_CREDENTIALS if n not in given)
        raise JobError(CONFIG, f"{given[0]} is set but {missing} is not; set both, or neither "
                               "(boto3's default credential chain)")
    template = env.get("FILES_S3_PREFIX_TEMPLATE") or "apps/{app}/"
    # The trailing '/' keeps app chat's prefix from also matching app chat-2's keys.
    if ("{app}" not in template or not template.endswith("/") or template.startswith("/")
            or "{" in template.replace("{app}", "") or "}" in template.replace("{app}", "")):
        raise JobError(CONFIG, f"FILES_S3_PREFIX_TEMPLATE={template!r} must contain {{app}}, end in '/' and "
                               "not start with '/', e.g. 'apps/{app}/'")
    return FilesSource(bucket=bucket, endpoint=_url(env, "FILES_S3_ENDPOINT"),
                       region=env.get("FILES_S3_REGION") or "us-east-1", prefix_template=template)
