"""The three operations: backup, restore, list."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_backup import postgres
from fleet_backup.errors import CONFIG, DUMP_FAILED, RESTORE_FAILED, RESTORE_REFUSED, JobError
from fleet_backup.lock import run_lock
from fleet_backup.qdrant import Qdrant, QdrantError
from fleet_backup.settings import App, Settings
from fleet_backup.store import BackupStore

log = logging.getLogger("fleet_backup")
MANIFEST_FORMAT = 1


def new_run_id(now: datetime) -> str:
    """UTC timestamp that sorts by time; microseconds so back-to-back runs never collide."""
    return now.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")


@contextlib.contextmanager
def _scratch(settings: Settings) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fleet-backup-", dir=settings.work_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _qdrant(settings: Settings) -> Qdrant | None:
    if not settings.qdrant_url:
        return None
    return Qdrant(settings.qdrant_url, os.environ.get("QDRANT_API_KEY") or None)


def run_backup(settings: Settings, store: BackupStore) -> dict[str, Any]:
    """Dump every app database, the roles and the apps' Qdrant collections; manifest last."""
    Settings.require_postgres()
    with run_lock(settings.lock_file, store, "backup", settings.lock_stale_seconds), _scratch(settings) as work:
        started = datetime.now(UTC)
        run_id = new_run_id(started)
        log.info("backup %s: start, apps %s, to s3://%s/%s", run_id, ",".join(a.name for a in settings.apps),
                 settings.bucket, store.run_prefix(run_id))
        objects: list[dict[str, Any]] = []

        def keep(path: Path, key: str, **about: str) -> None:
            stored = store.upload_verified(path, run_id, key)
            objects.append({"key": key, "sha256": stored.sha256, "size": stored.size, **about})
            log.info("backup %s: uploaded and verified %s (%d bytes)", run_id, key, stored.size)
            path.unlink()  # keep scratch space to one object at a time

        pg_version = postgres.client_version()
        for app in settings.apps:
            dump = work / f"{app.name}.dump"
            postgres.dump_database(app, dump)
            log.info("backup %s: dumped database %s", run_id, app.database)
            keep(dump, f"postgres/{app.name}.dump", kind="postgres", app=app.name, database=app.database)
        roles = work / "roles.sql"
        postgres.dump_roles(roles)
        log.info("backup %s: dumped roles (without passwords)", run_id)
        keep(roles, "postgres/roles.sql", kind="roles")

        qdrant = _qdrant(settings)
        if qdrant:
            try:
                for app in settings.apps:
                    for collection in qdrant.collections([app.collection_prefix]):
                        snap = work / f"{collection}.snapshot"
                        qdrant.snapshot(collection, snap)
                        log.info("backup %s: snapshot of Qdrant collection %s", run_id, collection)
                        keep(snap, f"qdrant/{collection}.snapshot", kind="qdrant", app=app.name,
                             collection=collection)
            except QdrantError as e:
                raise JobError(DUMP_FAILED, str(e)) from None

        manifest = {"format": MANIFEST_FORMAT, "id": run_id, "stack": settings.stack,
                    "startedAt": started.isoformat(), "finishedAt": datetime.now(UTC).isoformat(),
                    "apps": [a.name for a in settings.apps], "pgDump": pg_version, "objects": objects}
        store.put_manifest(run_id, manifest)
        log.info("backup %s: complete, manifest written (%d objects, %d bytes)", run_id, len(objects),
                 sum(o["size"] for o in objects))
        return manifest


def list_backups(store: BackupStore) -> list[dict[str, Any]]:
    """Completed backups (with a manifest), newest first."""
    return [store.read_manifest(run) for run in store.completed_runs()]


def resolve_backup(store: BackupStore, backup: str) -> str:
    if backup != "latest":
        return backup
    runs = store.completed_runs()
    if not runs:
        raise JobError(RESTORE_REFUSED, f"no completed backup under s3://{store.bucket}/{store.prefix}")
    return runs[0]


def run_restore(settings: Settings, store: BackupStore, backup: str = "latest",
                apps: list[str] | None = None, skip_qdrant: bool = False) -> str:
    """Verify every object the restore needs, then restore databases and collections; returns the id."""
    Settings.require_postgres()
    with run_lock(settings.lock_file, store, "restore", settings.lock_stale_seconds), _scratch(settings) as work:
        run_id = resolve_backup(store, backup)
        manifest = store.read_manifest(run_id)
        chosen = apps or list(manifest["apps"])
        unknown = sorted(set(chosen) - set(manifest["apps"]))
        if unknown:
            raise JobError(CONFIG, f"--app {', '.join(unknown)}: not in backup {run_id} "
                                   f"(it has {', '.join(manifest['apps'])})")
        entries = [o for o in manifest["objects"] if o.get("app") in chosen
                   and (o["kind"] == "postgres" or (o["kind"] == "qdrant" and not skip_qdrant))]
        qdrant = _qdrant(settings)
        if any(o["kind"] == "qdrant" for o in entries) and qdrant is None:
            raise JobError(CONFIG, "backup has Qdrant snapshots but QDRANT_URL is not set "
                                   "(set it, or pass --skip-qdrant)")
        log.info("restore %s: verifying %d objects for apps %s", run_id, len(entries), ",".join(chosen))
        files: dict[str, Path] = {}
        for entry in entries:  # every checksum is checked before anything is changed
            files[entry["key"]] = work / entry["key"].replace("/", "__")
            store.download_verified(run_id, entry, files[entry["key"]])
        log.info("restore %s: all %d checksums match the manifest", run_id, len(entries))
        postgres.check_roles_exist([App(a) for a in chosen])

        for entry in (e for e in entries if e["kind"] == "postgres"):
            app = App(entry["app"])
            postgres.restore_database(app, files[entry["key"]])
            log.info("restore %s: database %s restored", run_id, app.database)
        for entry in (e for e in entries if e["kind"] == "qdrant"):
            assert qdrant is not None
            try:
                qdrant.restore(entry["collection"], files[entry["key"]])
            except QdrantError as e:
                raise JobError(RESTORE_FAILED, str(e)) from None
            log.info("restore %s: Qdrant collection %s restored", run_id, entry["collection"])
        log.info("restore %s: complete", run_id)
        return run_id
