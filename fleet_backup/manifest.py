"""The run's manifest: signed with a key the bucket never holds, and checked entry by entry before use.

Object metadata and the manifest's checksums prove only that the bytes were not damaged: whoever can
write the bucket can rewrite a dump, its manifest and their metadata together. The HMAC-SHA256 over
the manifest's exact bytes, with BACKUP_SIGNING_KEY (a stack secret), is what a restore trusts; every
entry must then stay inside its own app's part of the run.
"""
from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from fleet_backup.errors import RESTORE_REFUSED, JobError
from fleet_backup.settings import APP_NAME, App

SIGNATURE_SCHEME = "hmac-sha256"
_SHA256 = re.compile(r"[0-9a-f]{64}")
# One path segment: no '.', '..', empty or control characters; '/' separates segments.
_BAD_SEGMENT = re.compile(r"\A\.{1,2}\Z|\A\Z|[\x00-\x1f\x7f\\]")


def sign(key: bytes, body: bytes) -> str:
    return f"{SIGNATURE_SCHEME}={hmac.new(key, body, hashlib.sha256).hexdigest()}"


def check_signature(key: bytes, body: bytes, signature: str | None, where: str) -> None:
    if not signature:
        raise JobError(RESTORE_REFUSED, f"{where} is not signed; refusing it (a backup is trusted only when "
                                        "signed with this stack's BACKUP_SIGNING_KEY)")
    if not hmac.compare_digest(sign(key, body), signature):
        raise JobError(RESTORE_REFUSED, f"{where} has a signature that does not match this stack's "
                                        "BACKUP_SIGNING_KEY (forged, or signed with another key); refusing it")


def safe_relative(path: object) -> bool:
    """A relative path of ordinary segments: it cannot climb out of, or start above, its folder."""
    return isinstance(path, str) and not path.startswith("/") and not any(
        _BAD_SEGMENT.search(segment) for segment in path.split("/"))


def check_entries(manifest: dict[str, Any], run_id: str, stack: str, where: str) -> None:
    """Every entry names an app of the run and a key inside that app's part of it; else refuse all."""
    def refuse(why: str) -> JobError:
        return JobError(RESTORE_REFUSED, f"{where}: {why}; refusing the backup")

    if manifest.get("id") != run_id or manifest.get("stack") != stack:
        raise refuse(f"it is the manifest of run {manifest.get('id')!r} of stack {manifest.get('stack')!r}, "
                     f"not of run {run_id!r} of stack {stack!r}")
    apps = manifest.get("apps")
    if not isinstance(apps, list) or not all(isinstance(a, str) and APP_NAME.fullmatch(a) for a in apps):
        raise refuse("its app list is not a list of app names")
    for entry in manifest.get("objects", []):
        key, kind, app = entry.get("key"), entry.get("kind"), entry.get("app")
        if not safe_relative(key):
            raise refuse(f"entry {key!r} is not a plain relative key ('..', '.', empty or absolute)")
        if not (isinstance(entry.get("sha256"), str) and _SHA256.fullmatch(entry["sha256"])
                and type(entry.get("size")) is int and entry["size"] >= 0):
            raise refuse(f"entry {key!r} has no valid sha256 and size")
        if entry.get("encrypted") is not None and not (
                entry["encrypted"] is True and isinstance(entry.get("storedSha256"), str)
                and _SHA256.fullmatch(entry["storedSha256"]) and type(entry.get("storedSize")) is int):
            raise refuse(f"entry {key!r} is marked encrypted without a valid storedSha256 and storedSize")
        if kind == "roles":
            expected = "postgres/roles.sql"
        elif app not in apps:
            raise refuse(f"entry {key!r} belongs to app {app!r}, which is not in the backup")
        elif kind == "postgres":
            expected = f"postgres/{app}.dump"
            if entry.get("database") != App(app).database:
                raise refuse(f"entry {key!r} names database {entry.get('database')!r}, not app {app}'s")
            counts = entry.get("rowCounts", {})
            if not (isinstance(counts, dict) and all(type(n) is int for n in counts.values())):
                raise refuse(f"entry {key!r} has row counts that are not numbers")
        elif kind == "qdrant":
            collection = entry.get("collection")
            if not (isinstance(collection, str) and safe_relative(collection) and "/" not in collection
                    and collection.startswith(App(app).collection_prefix)):
                raise refuse(f"entry {key!r} names collection {collection!r}, which is not app {app}'s")
            expected = f"qdrant/{collection}.snapshot"
        elif kind == "file":
            if not safe_relative(entry.get("file")):
                raise refuse(f"entry {key!r} has file path {entry.get('file')!r}, which leaves app {app}'s prefix")
            expected = f"files/{app}/{entry['file']}"
        else:
            raise refuse(f"entry {key!r} has unknown kind {kind!r}")
        if key != expected:
            raise refuse(f"entry {key!r} of app {app!r} ({kind}) should be {expected!r}")
