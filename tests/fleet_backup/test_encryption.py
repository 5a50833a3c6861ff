"""Client-side encryption: the format on its own, then the job against moto's S3 and real PostgreSQL."""
from __future__ import annotations

import hashlib
import io
import os
import struct
from pathlib import Path

import psycopg
import pytest

from appdata import fingerprint
from backup_env import (bucket_contents, dbs, delete_apps_files, drop_app_databases, env, files_env, job, manifest_of,  # noqa: F401
                        ok, pg, qdrant, run_ids, s3, s3_endpoint)
from fleet_backup.crypto import CHUNK, DecryptError, decrypt_stream, derive_key, encrypt_file

KEY = derive_key("test-encryption-key-5d0c4f8e2b7a9163c0ffee")


def sealed(tmp_path: Path, data: bytes) -> bytes:
    (tmp_path / "plain").write_bytes(data)
    encrypt_file(KEY, tmp_path / "plain", tmp_path / "sealed")
    return (tmp_path / "sealed").read_bytes()


def opened(blob: bytes, key: bytes = KEY) -> bytes:
    return b"".join(decrypt_stream(key, io.BytesIO(blob)))


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_encrypted_objects_decrypt_to_the_same_bytes_and_never_hold_them_in_clear(tmp_path, size):
    data = os.urandom(size)
    blob = sealed(tmp_path, data)
    assert opened(blob) == data
    assert size < 64 or data[:64] not in blob


def chunks(blob: bytes) -> tuple[bytes, list[bytes]]:
    header, rest, out = blob[:16], blob[16:], []
    while rest:
        (n,) = struct.unpack(">I", rest[:4])
        out.append(rest[:4 + n])
        rest = rest[4 + n:]
    return header, out


@pytest.mark.parametrize("damage", ["flip a byte", "drop the last chunk", "swap two chunks", "wrong key"])
def test_changed_reordered_or_cut_ciphertext_and_a_wrong_key_fail_to_decrypt(tmp_path, damage):
    blob = sealed(tmp_path, os.urandom(3 * CHUNK))
    header, parts = chunks(blob)
    assert len(parts) == 3
    key = KEY
    if damage == "flip a byte":
        blob = blob[:100] + bytes([blob[100] ^ 1]) + blob[101:]
    elif damage == "drop the last chunk":
        blob = header + b"".join(parts[:2])
    elif damage == "swap two chunks":
        blob = header + parts[1] + parts[0] + parts[2]
    else:
        key = derive_key("another-key-of-enough-length-0123456789")
    with pytest.raises(DecryptError):
        opened(blob, key)


SECRET = "test-encryption-key-5d0c4f8e2b7a9163c0ffee"


def test_with_a_key_the_store_never_sees_plaintext_and_restore_brings_everything_back(pg, files_env, s3):
    env, original = files_env
    env = {**env, "BACKUP_ENCRYPTION_KEY": SECRET}
    before = {db: fingerprint(pg, db) for db in dbs()}
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = manifest_of(s3, env, run)
    stored = bucket_contents(s3, env["BACKUP_S3_BUCKET"])
    for entry in manifest["objects"]:
        body = stored[f"backups/prod/{run}/{entry['key']}"]
        assert entry["encrypted"] is True and body.startswith(b"FLEETBK1")
        assert entry["storedSha256"] == hashlib.sha256(body).hexdigest() and entry["storedSize"] == len(body)
    report = original["apps/chat/3f2a_report.pdf"]
    (entry,) = [o for o in manifest["objects"] if o["key"] == "files/chat/3f2a_report.pdf"]
    assert entry["sha256"] == hashlib.sha256(report).hexdigest()
    assert not [k for k, body in stored.items() if report in body or b"PGDMP" in body or b"chat vectors" in body]

    ok(env, "verify")
    delete_apps_files(s3, env["FILES_S3_BUCKET"])
    drop_app_databases(pg)
    ok(env, "restore")
    assert {db: fingerprint(pg, db) for db in dbs()} == before
    assert bucket_contents(s3, env["FILES_S3_BUCKET"]) == original


@pytest.mark.parametrize(("key", "message"), [
    ("", "is encrypted and BACKUP_ENCRYPTION_KEY is not set"),
    ("a-different-key-of-enough-length-0123456789", "cannot decrypt"),
])
def test_restore_without_the_right_key_fails_clearly_and_changes_nothing(pg, env, key, message):
    ok({**env, "BACKUP_ENCRYPTION_KEY": SECRET}, "backup")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker after backup', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    result = job({**env, "BACKUP_ENCRYPTION_KEY": key}, "restore")
    assert result.returncode == 6 and message in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked
