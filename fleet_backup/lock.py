"""One backup/restore at a time.

Two layers, kept simple: `fcntl.flock` on a local file is the real, atomic guard for runs in this
container/host (released by the kernel if the process dies); a lock object in the bucket makes a
second host (e.g. a manual restore from a laptop) refuse while a fresh lock exists. The bucket check
is check-then-put, so it is best effort; the stale timeout recovers from a crashed holder.
"""
from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from fleet_backup.errors import BUSY, JobError
from fleet_backup.store import BackupStore


@contextlib.contextmanager
def local_lock(path: str) -> Iterator[None]:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobError(BUSY, f"another backup or restore is running (lock file {path} is held)") from None
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def run_lock(lock_file: str, store: BackupStore, command: str, stale_seconds: int) -> Iterator[None]:
    with local_lock(lock_file):
        store.take_lock_object(command, stale_seconds)
        try:
            yield
        finally:
            store.release_lock_object()
