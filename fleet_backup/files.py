"""The apps' uploaded files: the bucket Open WebUI stores them in, each app under its own key prefix."""
from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from fleet_backup.errors import DUMP_FAILED, RESTORE_FAILED, RESTORE_REFUSED, JobError
from fleet_backup.settings import App, FilesSource
from fleet_backup.store import delete_keys, s3_client

log = logging.getLogger("fleet_backup")


class FileStore:
    """Reads and writes the keys under each app's prefix in the files bucket; nothing else."""

    def __init__(self, source: FilesSource, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.source = source
        self.bucket = source.bucket
        # Its own keys: the store Open WebUI writes to may not accept the backup bucket's credentials.
        self.s3 = s3_client(source.endpoint, source.region, env.get("FILES_AWS_ACCESS_KEY_ID") or None,
                            env.get("FILES_AWS_SECRET_ACCESS_KEY") or None, env.get("FLEET_CA_FILE") or None)

    def prefix(self, app: App) -> str:
        return self.source.prefix(app)

    def keys(self, app: App, code: int = DUMP_FAILED) -> Iterator[str]:
        """Every key under the app's prefix, relative to it, in S3's (lexicographic) order."""
        prefix = self.prefix(app)
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(prefix):]
        except (BotoCoreError, ClientError) as e:
            raise JobError(code, f"listing s3://{self.bucket}/{prefix} failed: {e}") from None

    def objects(self, app: App) -> Iterator[tuple[str, int, str]]:
        """(key relative to the app's prefix, size, ETag) of every object under it, in S3's order."""
        prefix = self.prefix(app)
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(prefix):], obj["Size"], obj["ETag"]
        except (BotoCoreError, ClientError) as e:
            raise JobError(DUMP_FAILED, f"listing s3://{self.bucket}/{prefix} failed: {e}") from None

    def download(self, app: App, relative: str, dest: Path) -> bool:
        """Stream one file to `dest`; False if it was deleted since it was listed."""
        key = self.prefix(app) + relative
        try:
            self.s3.download_file(self.bucket, key, str(dest))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return False
            raise JobError(DUMP_FAILED, f"download of s3://{self.bucket}/{key} failed: {e}") from None
        except BotoCoreError as e:
            raise JobError(DUMP_FAILED, f"download of s3://{self.bucket}/{key} failed: {e}") from None
        return True

    def check_bucket_reachable(self) -> None:
        """Before a restore changes anything: the bucket exists and these credentials reach it."""
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as e:
            raise JobError(RESTORE_REFUSED, f"files bucket s3://{self.bucket} is not reachable: {e}; "
                                            "nothing was restored") from None

    def upload(self, app: App, relative: str, path: Path) -> None:
        key = self.prefix(app) + relative
        try:
            self.s3.upload_file(str(path), self.bucket, key)
        except (BotoCoreError, ClientError) as e:
            raise JobError(RESTORE_FAILED, f"upload of s3://{self.bucket}/{key} failed: {e}") from None

    def delete(self, app: App, relatives: list[str]) -> None:
        """Delete these keys under the app's prefix, up to 1,000 a request (DeleteObjects' limit)."""
        delete_keys(self.s3, self.bucket, self.prefix(app), relatives, RESTORE_FAILED)
