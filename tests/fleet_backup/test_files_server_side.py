"""Files on the same store as the backups: copied server-side in parallel, each copy's SHA-256 from the store."""
from __future__ import annotations

import hashlib

import pytest

from appdata import drop_database, fingerprint
from backup_env import (bucket_contents, dbs, env, files_env, job, manifest_of, ok, pg, qdrant, run_ids,  # noqa: F401
                        s3, s3_endpoint)


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
    for key in bucket_contents(s3, env["FILES_S3_BUCKET"]):
        if key.startswith(("apps/chat/", "apps/docs-team/")):
            s3.delete_object(Bucket=env["FILES_S3_BUCKET"], Key=key)
    for db in dbs():
        drop_database(pg, db)
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
