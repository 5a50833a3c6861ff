"""The backup bucket: verified uploads/downloads, manifests and the run lock object."""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from fleet_backup import crypto
from fleet_backup import manifest as signed
from fleet_backup.errors import BUSY, RESTORE_FAILED, RESTORE_REFUSED, UPLOAD_FAILED, JobError
from fleet_backup.settings import MAX_FILE_WORKERS, Settings

log = logging.getLogger("fleet_backup")
MANIFEST = "manifest.json"
_CHUNK = 1024 * 1024
SERVER_SIDE_COPY_LIMIT = 5 * 1024**3  # one CopyObject request copies up to 5 GiB
DELETE_BATCH = 1000  # keys per DeleteObjects request, S3's maximum
# DeleteObjects answers 200 with per-key errors, which botocore never retries; these are worth resending.
RETRYABLE_DELETE_CODES = frozenset({"InternalError", "SlowDown", "ServiceUnavailable"})
DELETE_RETRY_DELAYS = (0.5, 1.0, 2.0)  # seconds before each resend of the refused keys


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def delete_keys(s3: Any, bucket: str, prefix: str, relatives: list[str], code: int) -> None:
    """Delete prefix + each relative key, 1,000 a request, resending keys refused with a transient code."""
    where = f"s3://{bucket}/{prefix}"
    deleted = 0
    for start in range(0, len(relatives), DELETE_BATCH):
        pending = relatives[start:start + DELETE_BATCH]
        for delay in (*DELETE_RETRY_DELAYS, None):
            try:
                errors = s3.delete_objects(Bucket=bucket, Delete={
                    "Objects": [{"Key": prefix + r} for r in pending], "Quiet": True}).get("Errors", [])
            except (BotoCoreError, ClientError) as e:
                raise JobError(code, f"deleting {len(relatives)} keys under {where} failed after {deleted} "
                                     f"deleted: {e}") from None
            refused = {f["Key"][len(prefix):]: f.get("Code", "?") for f in errors}
            deleted += len(pending) - len(refused)
            pending = [r for r in pending if r in refused]
            if not pending:
                break
            if delay is None or not set(refused.values()) <= RETRYABLE_DELETE_CODES:
                not_deleted = len(relatives) - deleted
                raise JobError(code, f"deleting {len(relatives)} keys under {where}: {deleted} deleted, "
                                     f"{not_deleted} not deleted ({', '.join(sorted(set(refused.values())))}; "
                                     f"first: {pending[0]})")
            time.sleep(delay)


@dataclass(frozen=True)
class StoredObject:
    key: str  # relative to the run's folder
    sha256: str  # of the plaintext
    size: int
    stored_sha256: str | None = None  # of the ciphertext, when encrypted
    stored_size: int | None = None

    def entry(self) -> dict[str, Any]:
        """The manifest's fields for this object."""
        out: dict[str, Any] = {"key": self.key, "sha256": self.sha256, "size": self.size}
        if self.stored_sha256 is not None:
            out.update(encrypted=True, storedSha256=self.stored_sha256, storedSize=self.stored_size)
        return out


def _stored(entry: dict[str, Any]) -> tuple[str, int]:
    """What the bucket holds for an entry: the ciphertext's hash and size when encrypted."""
    if entry.get("encrypted"):
        return entry["storedSha256"], entry["storedSize"]
    return entry["sha256"], entry["size"]


def s3_client(endpoint: str | None, region: str, access_key_id: str | None = None,
              secret_access_key: str | None = None, ca_file: str | None = None) -> Any:
    """A boto3 S3 client; without explicit keys boto3 uses its default credential chain. `ca_file`:
    the only CA the endpoint's certificate may chain to (None: the public roots)."""
    # A kept-alive connection per file worker: beyond urllib3's pool (10 by default) each request would
    # open a new connection, a TCP (and TLS) handshake more per file to a remote store.
    config = Config(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=MAX_FILE_WORKERS)
    if endpoint:
        # S3-compatible stores: path-style URLs, and no flexible checksums they may not implement.
        config = config.merge(Config(s3={"addressing_style": "path"},
                                     request_checksum_calculation="when_required",
                                     response_checksum_validation="when_required"))
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=config,
                          aws_access_key_id=access_key_id, aws_secret_access_key=secret_access_key,
                          verify=ca_file)
    # botocore 1.36+ sends a CRC32 header instead of Content-MD5; MinIO before RELEASE.2025-01-20 (the
    # fleet's pinned one) refuses a DeleteObjects without Content-MD5 (MissingContentMD5).
    client.meta.events.register("before-call.s3.DeleteObjects", _content_md5)
    return client


def _content_md5(params: dict[str, Any], **_: Any) -> None:
    digest = hashlib.md5(params["body"], usedforsecurity=False).digest()
    params["headers"]["Content-MD5"] = base64.b64encode(digest).decode()


def _hex(b64: str) -> str:
    return base64.b64decode(b64).hex()


class _HashingReader:
    """A file-like view of a download that hashes every byte read through it."""

    def __init__(self) -> None:
        self.body: Any = None
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.body.read(n)
        self.digest.update(data)
        self.size += len(data)
        return data


class BackupStore:
    """Objects under <prefix><run id>/ in one bucket."""

    def __init__(self, settings: Settings, signing_key: bytes, encryption_key: bytes | None = None,
                 copy: bool = False) -> None:
        """The backup bucket, or with `copy` the second one (BACKUP_COPY_S3_*) holding the same runs."""
        self.prefix = settings.prefix
        self.stack = settings.stack
        self._settings = settings
        # A bucket with Object Lock refuses writes without a checksum header; other S3-compatible
        # stores may not implement these headers, so they are sent only where the lock needs them.
        self._checksum: dict[str, str] = {"ChecksumAlgorithm": "SHA256"} if settings.object_lock else {}
        self._signing_key = signing_key
        self._encryption_key = encryption_key
        self._copy = copy
        self._endpoint = settings.copy_to.endpoint if copy and settings.copy_to else settings.endpoint
        if copy:
            assert settings.copy_to is not None
            self.bucket = settings.copy_to.bucket
            self.s3 = s3_client(settings.copy_to.endpoint, settings.copy_to.region,
                                os.environ.get("BACKUP_COPY_AWS_ACCESS_KEY_ID") or None,
                                os.environ.get("BACKUP_COPY_AWS_SECRET_ACCESS_KEY") or None)
        else:
            self.bucket = settings.bucket
            # Credentials: boto3 reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY itself; we never touch them.
            self.s3 = s3_client(settings.endpoint, settings.region)

    def run_prefix(self, run_id: str) -> str:
        return f"{self.prefix}{run_id}/"

    # --- writing -------------------------------------------------------------------------------
    def upload_verified(self, path: Path, run_id: str, key: str) -> StoredObject:
        """Upload (encrypted first, with a key) with the stored bytes' SHA-256 as metadata, then read
        it back and compare the hash."""
        digest, size = sha256_file(path), path.stat().st_size
        stored = path
        if self._encryption_key is not None:
            stored = path.with_name(path.name + ".enc")
            crypto.encrypt_file(self._encryption_key, path, stored)
        stored_digest, stored_size = sha256_file(stored), stored.stat().st_size
        full = self.run_prefix(run_id) + key
        try:
            self.s3.upload_file(str(stored), self.bucket, full,
                                ExtraArgs={"Metadata": {"sha256": stored_digest}, **self._checksum})
            self._verify(full, stored_digest, stored_size)
        except (BotoCoreError, ClientError) as e:
            raise JobError(UPLOAD_FAILED, f"upload of s3://{self.bucket}/{full} failed: {e}") from None
        finally:
            if stored != path:
                stored.unlink(missing_ok=True)
        if stored == path:
            return StoredObject(key, digest, size)
        return StoredObject(key, digest, size, stored_digest, stored_size)

    def put_manifest(self, run_id: str, manifest: dict[str, Any]) -> None:
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        digest = hashlib.sha256(body).hexdigest()
        full = self.run_prefix(run_id) + MANIFEST
        try:
            self.s3.put_object(Bucket=self.bucket, Key=full, Body=body, ContentType="application/json", **self._checksum,
                               Metadata={"sha256": digest, "signature": signed.sign(self._signing_key, body)})
            self._verify(full, digest, len(body))
        except (BotoCoreError, ClientError) as e:
            raise JobError(UPLOAD_FAILED, f"upload of s3://{self.bucket}/{full} failed: {e}") from None

    def _verify(self, full_key: str, digest: str, size: int) -> None:
        """Read the object back and hash its bytes: proves what is stored, on any S3 implementation."""
        obj = self.s3.get_object(Bucket=self.bucket, Key=full_key)
        h, n = hashlib.sha256(), 0
        for chunk in obj["Body"].iter_chunks(_CHUNK):
            h.update(chunk)
            n += len(chunk)
        if h.hexdigest() != digest or n != size or obj.get("Metadata", {}).get("sha256") != digest:
            raise JobError(UPLOAD_FAILED, f"read-back of s3://{self.bucket}/{full_key} does not match the "
                                          f"local file (sha256 {digest[:12]}…, {size} bytes)")

    # --- reading -------------------------------------------------------------------------------
    def completed_runs(self) -> list[str]:
        """Run ids that have a manifest, newest first (ids are UTC timestamps, so they sort)."""
        runs: list[str] = []
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                rest = obj["Key"][len(self.prefix):]
                run, _, name = rest.partition("/")
                if name == MANIFEST:
                    runs.append(run)
        return sorted(runs, reverse=True)

    def read_manifest(self, run_id: str) -> dict[str, Any]:
        full = self.run_prefix(run_id) + MANIFEST
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=full)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise JobError(RESTORE_REFUSED, f"backup {run_id!r} has no {MANIFEST} (incomplete or unknown); "
                                                "`list` shows the completed ones") from None
            raise
        body = obj["Body"].read()
        where = f"s3://{self.bucket}/{full}"
        signed.check_signature(self._signing_key, body, obj.get("Metadata", {}).get("signature"), where)
        manifest = json.loads(body)
        signed.check_entries(manifest, run_id, self.stack, where)
        return manifest

    def download_verified(self, run_id: str, entry: dict[str, Any], dest: Path, code: int = RESTORE_REFUSED) -> None:
        """Download one object (and decrypt it) and fail with `code` unless both the stored bytes and
        the plaintext match the manifest's size and SHA-256."""
        full = self.run_prefix(run_id) + entry["key"]
        fetched = dest.with_name(dest.name + ".enc") if entry.get("encrypted") else dest
        try:
            self.s3.download_file(self.bucket, full, str(fetched))
        except (BotoCoreError, ClientError) as e:
            raise JobError(code, f"cannot download s3://{self.bucket}/{full}: {e}") from None
        try:
            self._check(full, entry, sha256_file(fetched), fetched.stat().st_size, code, _stored(entry))
            if fetched != dest:
                try:
                    crypto.decrypt_file(self._require_key(full, code), fetched, dest)
                except crypto.DecryptError as e:
                    raise JobError(code, f"cannot decrypt s3://{self.bucket}/{full}: {e}") from None
                self._check(full, entry, sha256_file(dest), dest.stat().st_size, code)
        finally:
            if fetched != dest:
                fetched.unlink(missing_ok=True)

    def _require_key(self, full: str, code: int) -> bytes:
        if self._encryption_key is None:
            raise JobError(code, f"s3://{self.bucket}/{full} is encrypted and BACKUP_ENCRYPTION_KEY is not set; "
                                 "set the stack's key to restore it")
        return self._encryption_key

    def require_encryption_key(self, manifest: dict[str, Any], run_id: str) -> None:
        """Before a restore changes anything: an encrypted backup needs the key."""
        if any(o.get("encrypted") for o in manifest["objects"]) and self._encryption_key is None:
            raise JobError(RESTORE_REFUSED, f"backup {run_id} is encrypted and BACKUP_ENCRYPTION_KEY is not set; "
                                            "set the stack's backupEncryptionKey, nothing was restored")

    def put_verify_record(self, run_id: str, record: dict[str, Any]) -> None:
        """A drill's result beside the run it checked (signed like a manifest)."""
        body = json.dumps({**record, "runId": run_id}, indent=2, sort_keys=True).encode()
        key = f"{self.run_prefix(run_id)}verify/{datetime.now(UTC).strftime('%Y%m%dT%H%M%S.%fZ')}.json"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", **self._checksum,
                           Metadata={"signature": signed.sign(self._signing_key, body)})

    def verified_runs(self) -> set[str]:
        """Runs with at least one successful, correctly signed drill record."""
        runs = set()
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        for page in pages:
            for obj in page.get("Contents", []):
                run, _, name = obj["Key"][len(self.prefix):].partition("/")
                if not name.startswith("verify/") or run in runs:
                    continue
                got = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])
                body = got["Body"].read()
                try:
                    signed.check_signature(self._signing_key, body, got.get("Metadata", {}).get("signature"),
                                           obj["Key"])
                except JobError:
                    continue
                if json.loads(body).get("ok") is True:
                    runs.add(run)
        return runs

    def check_verified(self, run_id: str, entry: dict[str, Any], code: int = RESTORE_REFUSED) -> None:
        """Stream one object through SHA-256 (and decryption) without keeping it: the check before any change."""
        full = self.run_prefix(run_id) + entry["key"]
        if not entry.get("encrypted") and self._store_checksum_matches(full, entry):
            return  # the store's own SHA-256 of these bytes (a server-side copy) is the manifest's
        stored, plain = _HashingReader(), hashlib.sha256()
        plain_size = 0
        try:
            stored.body = self.s3.get_object(Bucket=self.bucket, Key=full)["Body"]
            if entry.get("encrypted"):
                for chunk in crypto.decrypt_stream(self._require_key(full, code), stored):
                    plain.update(chunk)
                    plain_size += len(chunk)
            else:
                while stored.read(_CHUNK):
                    pass
        except (BotoCoreError, ClientError) as e:
            raise JobError(code, f"cannot download s3://{self.bucket}/{full}: {e}") from None
        except crypto.DecryptError as e:
            while stored.read(_CHUNK):  # the rest, so a changed object reads as a checksum mismatch
                pass
            self._check(full, entry, stored.digest.hexdigest(), stored.size, code, _stored(entry))
            raise JobError(code, f"cannot decrypt s3://{self.bucket}/{full}: {e}") from None
        self._check(full, entry, stored.digest.hexdigest(), stored.size, code, _stored(entry))
        if entry.get("encrypted"):
            self._check(full, entry, plain.hexdigest(), plain_size, code)

    def _store_checksum_matches(self, full: str, entry: dict[str, Any]) -> bool:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=full, ChecksumMode="ENABLED")
        except (BotoCoreError, ClientError):
            return False  # the download below reports it
        checksum = head.get("ChecksumSHA256")
        return bool(checksum) and "-" not in checksum and _hex(checksum) == entry["sha256"] \
            and head["ContentLength"] == entry["size"]

    def _check(self, full: str, entry: dict[str, Any], digest: str, size: int, code: int = RESTORE_REFUSED,
               expected: tuple[str, int] | None = None) -> None:
        want, want_size = expected or (entry["sha256"], entry["size"])
        if digest != want or size != want_size:
            raise JobError(code,
                           f"checksum mismatch for s3://{self.bucket}/{full}: manifest says sha256 "
                           f"{want} ({want_size} bytes), downloaded {digest} ({size} bytes)"
                           + ("; nothing was restored" if code == RESTORE_REFUSED else ""))

    def shares_store_with(self, files: Any) -> bool:
        """Server-side copies are possible: same endpoint, same keys, and no client-side encryption."""
        env = os.environ
        same_keys = (files.source.endpoint == self._endpoint and not self._copy and self._encryption_key is None
                     and (env.get("FILES_AWS_ACCESS_KEY_ID") or None) in (None, env.get("AWS_ACCESS_KEY_ID"))
                     and (env.get("FILES_AWS_SECRET_ACCESS_KEY") or None) in (None, env.get("AWS_SECRET_ACCESS_KEY")))
        return same_keys

    def copy_in_verified(self, source_bucket: str, source_key: str, etag: str, size: int, run_id: str,
                         key: str) -> StoredObject | None:
        """Copy one object (the version listed: same ETag) into the run on the store itself, which
        computes the SHA-256 of the bytes it writes; None if it was deleted or changed since listed."""
        full = self.run_prefix(run_id) + key
        try:
            result = self.s3.copy_object(Bucket=self.bucket, Key=full, ChecksumAlgorithm="SHA256",
                                         CopySource={"Bucket": source_bucket, "Key": source_key},
                                         CopySourceIfMatch=etag)
            digest = _hex(result["CopyObjectResult"]["ChecksumSHA256"])
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "PreconditionFailed", "412"):
                return None
            raise JobError(UPLOAD_FAILED, f"copy of s3://{source_bucket}/{source_key} to s3://{self.bucket}/{full} "
                                          f"failed: {e}") from None
        except (BotoCoreError, KeyError) as e:
            raise JobError(UPLOAD_FAILED, f"copy of s3://{source_bucket}/{source_key} to s3://{self.bucket}/{full} "
                                          f"failed (no SHA-256 from the store: {e})") from None
        return StoredObject(key, digest, size)

    def copy_out_verified(self, run_id: str, entry: dict[str, Any], dest_bucket: str, dest_key: str) -> None:
        """Copy one backed-up object back on the store; the store's SHA-256 of the copy must be the manifest's."""
        full = self.run_prefix(run_id) + entry["key"]
        try:
            result = self.s3.copy_object(Bucket=dest_bucket, Key=dest_key, ChecksumAlgorithm="SHA256",
                                         CopySource={"Bucket": self.bucket, "Key": full})
            digest = _hex(result["CopyObjectResult"]["ChecksumSHA256"])
        except (BotoCoreError, ClientError, KeyError) as e:
            raise JobError(RESTORE_FAILED, f"copy of s3://{self.bucket}/{full} to s3://{dest_bucket}/{dest_key} "
                                           f"failed: {e}") from None
        if digest != entry["sha256"]:
            raise JobError(RESTORE_FAILED, f"s3://{dest_bucket}/{dest_key}: the store's SHA-256 of the restored "
                                           f"copy is {digest}, the manifest says {entry['sha256']}")

    def copy_store(self) -> BackupStore:
        return BackupStore(self._settings, self._signing_key, self._encryption_key, copy=True)

    def copy_run_to(self, other: BackupStore, run_id: str, manifest: dict[str, Any]) -> None:
        """Stream every object of a complete run to `other`, read each back there, manifest last."""
        prefix = self.run_prefix(run_id)
        entries: list[tuple[str, tuple[str, int] | None]] = [(o["key"], _stored(o)) for o in manifest["objects"]]
        for key, expected in [*entries, (MANIFEST, None)]:
            full = prefix + key
            try:
                source = self.s3.get_object(Bucket=self.bucket, Key=full)
                metadata = source.get("Metadata", {})
                other.s3.upload_fileobj(source["Body"], other.bucket, full, ExtraArgs={
                    "Metadata": metadata, **other._checksum, "ContentType": source.get("ContentType", "binary/octet-stream")})
                # The manifest's own metadata holds its hash (and signature).
                digest, size = expected or (metadata["sha256"], source["ContentLength"])
                other._verify(full, digest, size)
            except (BotoCoreError, ClientError) as e:
                raise JobError(UPLOAD_FAILED, f"copy of {full} to s3://{other.bucket} failed: {e}") from None

    def delete_run(self, run_id: str) -> None:
        """Manifest first, so a half-deleted run is incomplete (ignored), never a broken complete one."""
        prefix = self.run_prefix(run_id)
        self.s3.delete_object(Bucket=self.bucket, Key=prefix + MANIFEST)
        keys = [o["Key"][len(prefix):] for page in self.s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix) for o in page.get("Contents", [])]
        delete_keys(self.s3, self.bucket, prefix, keys, UPLOAD_FAILED)  # pruning is a backup's last step

    # --- the lock object -----------------------------------------------------------------------
    @property
    def lock_key(self) -> str:
        return self.prefix + ".lock"

    def take_lock_object(self, command: str, stale_seconds: int) -> None:
        """Refuse if another host's lock object is fresh; then write ours (check-then-put, best effort)."""
        me = socket.gethostname()
        try:
            head = self.s3.get_object(Bucket=self.bucket, Key=self.lock_key)
            holder = json.loads(head["Body"].read() or b"{}")
            age = (datetime.now(UTC) - head["LastModified"]).total_seconds()
            # Same host: we already hold the local flock, so that holder is dead; take over.
            if age < stale_seconds and holder.get("host") != me:
                raise JobError(BUSY, f"another {holder.get('command', 'run')} on {holder.get('host', '?')} "
                                     f"holds s3://{self.bucket}/{self.lock_key} (age {int(age)}s < "
                                     f"{stale_seconds}s); wait for it or delete the object if it is dead")
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise
        body = {"host": me, "pid": os.getpid(), "command": command,
                "started": datetime.now(UTC).isoformat(timespec="seconds")}
        self.s3.put_object(Bucket=self.bucket, Key=self.lock_key, Body=json.dumps(body).encode(), **self._checksum)

    def release_lock_object(self) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=self.lock_key)
