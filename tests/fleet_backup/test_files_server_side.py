"""Files on the same store as the backups: copied server-side in parallel, each copy's SHA-256 from the store."""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import pytest

from appdata import fingerprint
from backup_env import (bucket_contents, dbs, delete_apps_files, drop_app_databases, env, files_env, in_process,  # noqa: F401
                        job, manifest_of, ok, pg, qdrant, run_ids, s3, s3_endpoint)


@pytest.fixture
def same_store(files_env):
    env, original = files_env
    # The files bucket readable with the backup's own keys on the same endpoint: server-side copies.
    env = {**env, "FILES_AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
           "FILES_AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"], "BACKUP_FILE_WORKERS": "4"}
    return env, original


def test_server_side_backup_and_restore_bring_back_every_file_with_its_own_sha256(pg, same_store, s3):
    env, original = same_store
    before = {db: fingerprint(pg, db) for db in dbs()}
    result = ok(env, "backup")
    assert "(server-side copies)" in result.stderr
    (run,) = run_ids(env)
    files = {o["file"]: o for o in manifest_of(s3, env, run)["objects"] if o["kind"] == "file"}
    for key, body in original.items():
        if key.startswith(("apps/chat/", "apps/docs-team/")):
            entry = files[key.split("/", 2)[2]]
            assert (entry["sha256"], entry["size"]) == (hashlib.sha256(body).hexdigest(), len(body))
    delete_apps_files(s3, env["FILES_S3_BUCKET"])
    drop_app_databases(pg)
    ok(env, "restore")
    assert bucket_contents(s3, env["FILES_S3_BUCKET"]) == original
    assert {db: fingerprint(pg, db) for db in dbs()} == before


def test_a_server_side_copied_file_changed_in_the_backup_is_refused_before_any_change(pg, same_store, s3):
    env, _ = same_store
    ok(env, "backup")
    (run,) = run_ids(env)
    bad = f"backups/prod/{run}/files/chat/3f2a_report.pdf"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=bad, Body=b"tampered")
    marked = fingerprint(pg, "openwebui_chat")
    result = job(env, "restore")
    assert result.returncode == 6 and f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{bad}" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked


def test_the_s3_client_keeps_a_connection_open_for_every_file_worker() -> None:
    """Past urllib3's pool size each parallel copy would open a new connection: a handshake more per
    file to a remote store."""
    from fleet_backup.settings import MAX_FILE_WORKERS
    from fleet_backup.store import s3_client
    client = s3_client("http://127.0.0.1:9", "us-east-1", "key", "secret")
    assert client.meta.config.max_pool_connections >= MAX_FILE_WORKERS


def _one_app_waits_for_the_other(monkeypatch, method: str, app_of: Callable[..., str]) -> list[bool]:
    """Wrap BackupStore.`method` so the first copy of app chat waits (up to a deadline) until a copy of
    docs-team has started; returns whether it did. Copies drained app by app never overlap across apps."""
    from fleet_backup.store import BackupStore
    original = getattr(BackupStore, method)
    other_started, claimed, waited = threading.Event(), threading.Lock(), []

    def wrapped(self, *args, **kwargs):
        app = app_of(*args, **kwargs)
        if app == "docs-team":
            other_started.set()
        elif app == "chat" and claimed.acquire(blocking=False):
            waited.append(other_started.wait(timeout=15))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(BackupStore, method, wrapped)
    return waited


def test_backup_copies_files_in_one_pool_across_apps_so_no_worker_idles_at_an_apps_tail(pg, same_store,
                                                                                          monkeypatch):
    """Two workers, an app's copy held back: the other worker goes on with the next app's files instead
    of waiting for the first app to drain."""
    env, _ = same_store
    waits = _one_app_waits_for_the_other(monkeypatch, "copy_in_verified",
                                         lambda bucket, key, *rest: key.split("/")[1])
    in_process(monkeypatch, {**env, "BACKUP_FILE_WORKERS": "2"}, "backup")
    assert waits == [True]


def test_restore_copies_files_in_one_pool_across_apps_so_no_worker_idles_at_an_apps_tail(pg, same_store, s3,
                                                                                         monkeypatch):
    env, original = same_store
    env = {**env, "BACKUP_FILE_WORKERS": "2"}
    ok(env, "backup")
    delete_apps_files(s3, env["FILES_S3_BUCKET"])
    waits = _one_app_waits_for_the_other(monkeypatch, "copy_out_verified", lambda run_id, entry, *rest: entry["app"])
    in_process(monkeypatch, env, "restore")
    assert waits == [True]
    assert bucket_contents(s3, env["FILES_S3_BUCKET"]) == original
