"""The scheduled job: each run's report (HTML, JSON, CSV) to the backup bucket, and its health."""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import boto3

from fleet_analytics.errors import CONFIG, ReportError

log = logging.getLogger("fleet_analytics")

CONTENT_TYPES = {"html": "text/html; charset=utf-8", "json": "application/json", "csv": "text/csv; charset=utf-8"}


@dataclass(frozen=True)
class JobSettings:
    stack: str
    bucket: str
    endpoint: str | None
    region: str
    since_days: int
    state_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> JobSettings:
        env = os.environ if env is None else env
        stack, bucket = env.get("ANALYTICS_STACK", ""), env.get("ANALYTICS_S3_BUCKET", "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stack):
            raise ReportError(CONFIG, f"ANALYTICS_STACK={stack!r}: give the stack name (letters, digits, '.', '_', '-')")
        if not bucket:
            raise ReportError(CONFIG, "ANALYTICS_S3_BUCKET is not set: the bucket the reports go to")
        days = env.get("ANALYTICS_SINCE_DAYS", "30")
        if not days.isdigit() or not 1 <= int(days) <= 3660:
            raise ReportError(CONFIG, f"ANALYTICS_SINCE_DAYS={days!r}: give a number of days from 1 to 3660")
        return cls(stack=stack, bucket=bucket, endpoint=env.get("ANALYTICS_S3_ENDPOINT") or None,
                   region=env.get("ANALYTICS_S3_REGION") or "us-east-1", since_days=int(days),
                   state_dir=Path(env.get("ANALYTICS_STATE_DIR") or "/var/lib/fleet-analytics"))


def publish(job: JobSettings, reports: Mapping[str, str], now: datetime) -> list[str]:
    """reports/<stack>/<UTC date>/report.<ext>, then the same under latest/; returns the keys written."""
    s3 = boto3.client("s3", endpoint_url=job.endpoint, region_name=job.region)
    keys = []
    for folder in (now.astimezone(UTC).date().isoformat(), "latest"):
        for ext, text in reports.items():
            key = f"reports/{job.stack}/{folder}/report.{ext}"
            s3.put_object(Bucket=job.bucket, Key=key, Body=text.encode(), ContentType=CONTENT_TYPES[ext])
            keys.append(key)
    return keys


def record_run(job: JobSettings, code: int, error: str | None, now: datetime) -> None:
    """What the healthcheck reads: the last run's outcome (written atomically)."""
    job.state_dir.mkdir(parents=True, exist_ok=True)
    tmp = job.state_dir / "last-run.json.tmp"
    tmp.write_text(json.dumps({"finished": now.astimezone(UTC).isoformat(), "code": code, "error": error}))
    tmp.replace(job.state_dir / "last-run.json")


def health(state_dir: Path) -> tuple[bool, str]:
    """Healthy until a run failed; the next good run makes it healthy again."""
    path = state_dir / "last-run.json"
    if not path.exists():
        return True, "no run yet"
    last = json.loads(path.read_text())
    if last["code"] == 0:
        return True, f"last run ok at {last['finished']}"
    return False, f"last run failed at {last['finished']} (exit {last['code']}): {last['error']}"
