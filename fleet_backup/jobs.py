"""The three operations: backup, restore, list."""
from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fleet_backup import postgres
from fleet_backup.errors import CONFIG, DUMP_FAILED, RESTORE_FAILED, RESTORE_REFUSED, VERIFY_FAILED, JobError
from fleet_backup.files import FileStore
from fleet_backup.lock import run_lock
from fleet_backup.qdrant import Qdrant, QdrantError
from fleet_backup.settings import App, Settings
from fleet_backup.store import SERVER_SIDE_COPY_LIMIT, BackupStore, StoredObject

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
    return Qdrant(settings.qdrant_url, os.environ.get("QDRANT_API_KEY") or None,
                  ca_file=os.environ.get("FLEET_CA_FILE") or None)


def _file_store(settings: Settings) -> FileStore | None:
    return FileStore(settings.files) if settings.files else None


def _backup_files(files: FileStore, apps: list[App], work: Path, run_id: str, store: BackupStore,
                  keep: Callable[..., dict[str, Any]], workers: int) -> None:
    """Copy every object under each app's prefix into the run, `workers` at a time in one pool across
    the apps (so no app's last copies run with idle workers): server-side (the store computes each
    copy's SHA-256) when both buckets are on one store and nothing is encrypted, else streamed through
    scratch space (one file per worker) and read back."""
    server_side = store.shares_store_with(files)
    items: list[tuple[App, str, int, str]] = []
    for app in apps:
        listed = [(app, *obj) for obj in files.objects(app)]
        log.info("backup %s: app=%s copying %d files from s3://%s/%s", run_id, app.name, len(listed), files.bucket,
                 files.prefix(app))
        items += listed

    def copy(item: tuple[int, tuple[App, str, int, str]]) -> dict[str, Any] | None:
        i, (app, relative, size, etag) = item
        about = {"kind": "file", "app": app.name, "file": relative}
        key = f"files/{app.name}/{relative}"
        if server_side and size <= SERVER_SIDE_COPY_LIMIT:
            stored = store.copy_in_verified(files.bucket, files.prefix(app) + relative, etag, size, run_id, key)
            if stored is not None:
                return keep(None, key, stored=stored, **about)
            # Deleted or changed since it was listed: the streamed path below says which, with its real size.
        staged = work / f"file-{i}"
        if not files.download(app, relative, staged):
            return None
        return keep(staged, key, **about)

    totals = {app.name: [0, 0] for app in apps}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for (app, relative, _, _), stored in zip(items, pool.map(copy, enumerate(items))):
            if stored is None:
                log.warning("backup %s: app=%s %s%s was deleted while the backup ran; skipped", run_id, app.name,
                            files.prefix(app), relative)
                continue
            totals[app.name][0] += 1
            totals[app.name][1] += stored["size"]
    for app in apps:
        count, size = totals[app.name]
        log.info("backup %s: app=%s copied and verified %d files (%d bytes) from s3://%s/%s%s", run_id, app.name,
                 count, size, files.bucket, files.prefix(app), " (server-side copies)" if server_side else "")


def run_backup(settings: Settings, store: BackupStore) -> dict[str, Any]:
    """Dump every app database, the roles, the apps' Qdrant collections and files; manifest last."""
    settings.require_postgres()
    with run_lock(settings.lock_file, store, "backup", settings.lock_stale_seconds), _scratch(settings) as work:
        started = datetime.now(UTC)
        run_id = new_run_id(started)
        log.info("backup %s: start, apps %s, to s3://%s/%s", run_id, ",".join(a.name for a in settings.apps),
                 settings.bucket, store.run_prefix(run_id))
        objects: list[dict[str, Any]] = []

        def keep(path: Path | None, key: str, stored: StoredObject | None = None, **about: Any) -> dict[str, Any]:
            if stored is None:
                assert path is not None
                stored = store.upload_verified(path, run_id, key)
                path.unlink()  # keep scratch space to one object per worker
            entry = {**stored.entry(), **about}
            objects.append(entry)  # list.append is atomic: file workers share it
            if about.get("kind") != "file":  # files are summed up per app: there can be thousands
                log.info("backup %s: uploaded and verified %s (%d bytes)", run_id, key, stored.size)
            return entry

        pg_version = postgres.client_version()
        for app in settings.apps:
            dump = work / f"{app.name}.dump"
            counts = postgres.dump_database(app, dump)
            log.info("backup %s: app=%s dumped database %s (%d tables, %d rows)", run_id, app.name, app.database,
                     len(counts),
                     sum(counts.values()))
            keep(dump, f"postgres/{app.name}.dump", kind="postgres", app=app.name, database=app.database,
                 rowCounts=counts)
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
                        log.info("backup %s: app=%s snapshot of Qdrant collection %s", run_id, app.name,
                                 collection)
                        keep(snap, f"qdrant/{collection}.snapshot", kind="qdrant", app=app.name,
                             collection=collection)
            except QdrantError as e:
                raise JobError(DUMP_FAILED, str(e)) from None

        # Files after the dumps: every file a dumped row references already exists (unless deleted
        # in between); files uploaded since are copied as orphans. Files first would miss new uploads.
        files = _file_store(settings)
        if files:
            _backup_files(files, list(settings.apps), work, run_id, store, keep, settings.file_workers)

        manifest = {"format": MANIFEST_FORMAT, "id": run_id, "stack": settings.stack,
                    "startedAt": started.isoformat(), "finishedAt": datetime.now(UTC).isoformat(),
                    "apps": [a.name for a in settings.apps], "pgDump": pg_version, "objects": objects}
        if files:
            manifest["files"] = {"bucket": files.bucket,
                                 "prefixes": {a.name: files.prefix(a) for a in settings.apps}}
        store.put_manifest(run_id, manifest)
        log.info("backup %s: complete, manifest written (%d objects, %d bytes)", run_id, len(objects),
                 sum(o["size"] for o in objects))
        if settings.copy_to:
            copy = store.copy_store()
            store.copy_run_to(copy, run_id, manifest)
            log.info("backup %s: copied and verified every object in s3://%s/%s", run_id, copy.bucket,
                     copy.run_prefix(run_id))
        if settings.keep_last:
            prune(store, settings.keep_last)
            if settings.copy_to:
                prune(store.copy_store(), settings.keep_last)
        return manifest


def prune(store: BackupStore, keep_last: int) -> list[str]:
    """Delete all but the newest `keep_last` complete runs, and never the newest verified one.

    Only runs with a valid signed manifest count (a planted one cannot push real runs out); a run
    without a manifest may still be in progress, so it is left to the lifecycle rules' age limit.
    """
    complete = [m["id"] for m in list_backups(store)]
    drilled = store.verified_runs()
    verified = [run for run in complete if run in drilled]
    keep = set(complete[:keep_last]) | set(verified[:1])
    doomed = [run for run in complete if run not in keep]
    for run in doomed:
        store.delete_run(run)
        log.info("prune: deleted run %s (keepLast %d)", run, keep_last)
    return doomed


def bytes_per_app(manifest: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for o in manifest["objects"]:
        if o.get("app"):
            sizes[o["app"]] = sizes.get(o["app"], 0) + o["size"]
    return sizes


def run_verify(settings: Settings, store: BackupStore, backup: str = "latest") -> dict[str, Any]:
    """A restore drill: every object's checksum, every database restored into a scratch database
    (never the live one) with its row counts compared to the backup's; the result goes to the bucket."""
    settings.require_postgres()
    with run_lock(settings.lock_file, store, "verify", settings.lock_stale_seconds), _scratch(settings) as work:
        run_id = resolve_backup(store, backup)
        started = datetime.now(UTC)
        try:
            manifest = store.read_manifest(run_id)
            _drill(store, run_id, manifest, work)
        except JobError as e:
            store.put_verify_record(run_id, {"ok": False, "reason": str(e), "startedAt": started.isoformat(),
                                             "finishedAt": datetime.now(UTC).isoformat()})
            raise JobError(VERIFY_FAILED, f"backup {run_id} failed verification: {e}") from None
        record = {"ok": True, "startedAt": started.isoformat(), "finishedAt": datetime.now(UTC).isoformat(),
                  "objects": len(manifest["objects"])}
        store.put_verify_record(run_id, record)
        log.info("verify %s: ok, %d objects checked, every database restored with matching row counts", run_id,
                 len(manifest["objects"]))
        return {"runId": run_id, **record}


def _drill(store: BackupStore, run_id: str, manifest: dict[str, Any], work: Path) -> None:
    for entry in manifest["objects"]:
        if entry["kind"] != "postgres":
            store.check_verified(run_id, entry, VERIFY_FAILED)
            continue
        dump = work / "drill.dump"
        store.download_verified(run_id, entry, dump, VERIFY_FAILED)
        try:
            counts = postgres.verify_database(App(entry["app"]), dump)
        except JobError as e:
            raise JobError(VERIFY_FAILED, f"{store.run_prefix(run_id)}{entry['key']}: {e}") from None
        finally:
            dump.unlink(missing_ok=True)
        expected = entry.get("rowCounts")
        if counts != expected:
            differ = sorted(t for t in set(counts) | set(expected or {}) if counts.get(t) != (expected or {}).get(t))
            detail = ", ".join(f"{t}: backup recorded {(expected or {}).get(t)}, restored {counts.get(t)}"
                               for t in differ[:5])
            raise JobError(VERIFY_FAILED, f"{store.run_prefix(run_id)}{entry['key']}: row counts differ ({detail})")
        log.info("verify %s: app=%s database restored into a scratch database, %d tables' row counts match",
                 run_id, entry["app"], len(counts))


def list_backups(store: BackupStore) -> list[dict[str, Any]]:
    """Completed backups (with a manifest that is signed and well-formed), newest first."""
    manifests = []
    for run in store.completed_runs():
        try:
            manifests.append(store.read_manifest(run))
        except JobError as e:
            log.warning("list: skipping run %s: %s", run, e)
    return manifests


def resolve_backup(store: BackupStore, backup: str) -> str:
    if backup != "latest":
        return backup
    runs = store.completed_runs()
    if not runs:
        raise JobError(RESTORE_REFUSED, f"no completed backup under s3://{store.bucket}/{store.prefix}")
    return runs[0]


def run_restore(settings: Settings, store: BackupStore, backup: str = "latest",
                apps: list[str] | None = None, skip_qdrant: bool = False, skip_files: bool = False,
                prune_files: bool = False) -> str:
    """Verify every object the restore needs, then restore databases, collections and files; returns the id."""
    settings.require_postgres()
    if settings.report_columns is None:
        raise JobError(CONFIG, "BACKUP_REPORT_COLUMNS is not set: a restore grants each app's analytics role "
                               "the report's columns (the program sets it; see `python -m fleet_backup --help`)")
    with run_lock(settings.lock_file, store, "restore", settings.lock_stale_seconds), _scratch(settings) as work:
        run_id = resolve_backup(store, backup)
        manifest = store.read_manifest(run_id)
        store.require_encryption_key(manifest, run_id)
        chosen = apps or list(manifest["apps"])
        unknown = sorted(set(chosen) - set(manifest["apps"]))
        if unknown:
            raise JobError(CONFIG, f"--app {', '.join(unknown)}: not in backup {run_id} "
                                   f"(it has {', '.join(manifest['apps'])})")
        with_files = "files" in manifest and not skip_files
        if prune_files and not with_files:
            raise JobError(CONFIG, f"--prune-files: backup {run_id} has no files to restore"
                           + (" (--skip-files is given)" if skip_files else " (taken without FILES_S3_BUCKET)"))
        entries = [o for o in manifest["objects"] if o.get("app") in chosen
                   and (o["kind"] == "postgres" or (o["kind"] == "qdrant" and not skip_qdrant)
                        or (o["kind"] == "file" and with_files))]
        qdrant = _qdrant(settings)
        if any(o["kind"] == "qdrant" for o in entries) and qdrant is None:
            raise JobError(CONFIG, "backup has Qdrant snapshots but QDRANT_URL is not set "
                                   "(set it, or pass --skip-qdrant)")
        files = _file_store(settings)
        if with_files and files is None:
            raise JobError(CONFIG, "backup has the apps' files but FILES_S3_BUCKET is not set "
                                   "(set it, or pass --skip-files)")
        log.info("restore %s: verifying %d objects for apps %s", run_id, len(entries), ",".join(chosen))
        local: dict[str, Path] = {}
        with ThreadPoolExecutor(max_workers=settings.file_workers) as pool:  # every checksum before any change
            # Files: streamed and dropped (all at once may not fit in scratch), in parallel while the
            # dumps and snapshots download.
            checked = pool.map(lambda entry: store.check_verified(run_id, entry),
                               [e for e in entries if e["kind"] == "file"])
            for entry in (e for e in entries if e["kind"] != "file"):
                local[entry["key"]] = work / entry["key"].replace("/", "__")
                store.download_verified(run_id, entry, local[entry["key"]])
            list(checked)
        log.info("restore %s: all %d checksums match the manifest", run_id, len(entries))
        postgres.check_roles_exist([App(a) for a in chosen])
        if with_files:
            assert files is not None
            files.check_bucket_reachable()

        for entry in (e for e in entries if e["kind"] == "postgres"):
            app = App(entry["app"])
            postgres.restore_database(app, local[entry["key"]], settings.report_columns)
            log.info("restore %s: app=%s database %s restored", run_id, app.name, app.database)
        for entry in (e for e in entries if e["kind"] == "qdrant"):
            assert qdrant is not None
            try:
                qdrant.restore(entry["collection"], local[entry["key"]])
            except QdrantError as e:
                raise JobError(RESTORE_FAILED, str(e)) from None
            log.info("restore %s: app=%s Qdrant collection %s restored", run_id, entry["app"], entry["collection"])
        if with_files:
            assert files is not None
            _restore_files(store, files, run_id, [App(name) for name in chosen],
                           [e for e in entries if e["kind"] == "file"], work, prune_files, settings.file_workers)
        log.info("restore %s: complete", run_id)
        return run_id


def _restore_files(store: BackupStore, files: FileStore, run_id: str, apps: list[App],
                   entries: list[dict[str, Any]], work: Path, prune: bool, workers: int) -> None:
    """Put the apps' files back under their prefixes (same keys overwritten), `workers` at a time in one
    pool across the apps, each app's live prefix listed meanwhile; extra keys only go with prune. Each
    file is checked again as it is written: by the store's SHA-256 of a server-side copy, or by hashing
    the downloaded (and decrypted) bytes."""
    server_side = store.shares_store_with(files)

    def put_back(item: tuple[int, dict[str, Any]]) -> None:
        i, entry = item
        app = App(entry["app"])
        if server_side and not entry.get("encrypted") and entry["size"] <= SERVER_SIDE_COPY_LIMIT:
            store.copy_out_verified(run_id, entry, files.bucket, files.prefix(app) + entry["file"])
            return
        staged = work / f"file-{i}"
        store.download_verified(run_id, entry, staged, code=RESTORE_FAILED)
        files.upload(app, entry["file"], staged)
        staged.unlink()

    restored = {app.name: {e["file"] for e in entries if e["app"] == app.name} for app in apps}
    for app in apps:
        log.info("restore %s: app=%s restoring %d files to s3://%s/%s", run_id, app.name, len(restored[app.name]),
                 files.bucket, files.prefix(app))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Keys the backup does not have are untouched by the copies: listed while they run.
        live = {app.name: pool.submit(lambda a: list(files.keys(a, RESTORE_FAILED)), app) for app in apps}
        list(pool.map(put_back, enumerate(entries)))
        extra = {name: [k for k in listed.result() if k not in restored[name]] for name, listed in live.items()}
    for app in apps:
        if prune:
            files.delete(app, extra[app.name])
        log.info("restore %s: app=%s %d files restored to s3://%s/%s; %d files not in the backup %s",
                 run_id, app.name, len(restored[app.name]), files.bucket, files.prefix(app), len(extra[app.name]),
                 "deleted (--prune-files)" if prune else "left in place (--prune-files deletes them)")
