"""The job's log lines on stderr: never a secret, never a URL's user:password.

One line per step, for grep and cron: `<UTC time, ms> fleet-backup <LEVEL> <command> <run id>: [app=<name>] ...`,
and the exit code (fleet_backup/errors.py) says how the run ended.
"""
from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Mapping

# Variables whose values are secrets (the job's contract in fleet_backup/__init__.py).
SECRET_VARIABLE = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|API_KEY|SIGNING_KEY|ENCRYPTION_KEY|WEBHOOK_URL|TOKEN")
_USERINFO = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s@]+@")


def secret_values(env: Mapping[str, str]) -> list[str]:
    """Values of the secret variables, longest first (so a secret containing another is cut whole)."""
    values = {v for k, v in env.items() if SECRET_VARIABLE.search(k) and len(v) >= 6}
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    text = _USERINFO.sub(r"\1***@", text)
    for value in secrets:
        text = text.replace(value, "***")
    return text


class RedactingFormatter(logging.Formatter):
    """A last line of defence: messages are written not to hold secrets, and this cuts any that slip in."""

    converter = time.gmtime  # timestamps in UTC, like the schedule and the run ids

    def __init__(self, fmt: str, secrets: list[str]) -> None:
        super().__init__(fmt, datefmt="%Y-%m-%dT%H:%M:%S")
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure(env: Mapping[str, str] | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s.%(msecs)03dZ fleet-backup %(levelname)s %(message)s",
                                            secret_values(os.environ if env is None else env)))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)
