"""`schedule`: publish at every cron time (UTC), forever or for a bounded number of runs."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

log = logging.getLogger("fleet_analytics")


def validate_cron(expr: str) -> str:
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"{expr!r} is not a 5-field cron expression, e.g. \"30 2 * * *\"")
    return expr


def run_schedule(expr: str, run: Callable[[], int], *, now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep, max_runs: int | None = None) -> None:
    """Sleep until each cron time (UTC) and call `run`; a failed run is logged and the loop goes on."""
    runs = 0
    while max_runs is None or runs < max_runs:
        due = croniter(validate_cron(expr), now().astimezone(UTC)).get_next(datetime)
        log.info("schedule: next report at %s", due.isoformat())
        while (left := (due - now()).total_seconds()) > 0:
            sleep(min(left, 300))  # wake regularly so clock jumps do not overshoot much
        log.info("schedule: report finished with exit code %d", run())
        runs += 1
