"""Exit codes of the job; each failure class maps to one code."""
from __future__ import annotations

OK = 0
UNEXPECTED = 1
CONFIG = 2  # bad environment or arguments
BUSY = 3  # another backup/restore holds the lock
DUMP_FAILED = 4  # pg_dump, pg_dumpall, a Qdrant snapshot or a file download failed
UPLOAD_FAILED = 5  # S3 upload failed or the read-back checksum differed
RESTORE_REFUSED = 6  # unknown backup, missing manifest or checksum mismatch: nothing was changed
RESTORE_FAILED = 7  # pg_restore or the Qdrant upload failed while restoring
VERIFY_FAILED = 8  # a restore drill failed: an object, a scratch restore or a row count disagrees
UNHEALTHY = 9  # `health`: the last backup failed or the last success is too old


class JobError(Exception):
    """A failure with its exit code; str() is safe to log (no secrets)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
