"""Exit codes of the report; each failure class maps to one code."""
from __future__ import annotations

OK = 0
UNEXPECTED = 1
CONFIG = 2  # bad environment or arguments
DATABASE = 3  # an app's database could not be read
UNKNOWN_SCHEMA = 4  # an app's database is at an alembic revision the report was not tested with
UPLOAD_FAILED = 5  # the scheduled job could not store the report


class ReportError(Exception):
    """A failure with its exit code; str() is safe to print (no secrets)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
