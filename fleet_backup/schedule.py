"""`schedule`: run a backup at every cron time (UTC), forever or for a bounded number of runs."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from croniter import croniter

log = logging.getLogger("fleet_backup")


def validate_cron(expr: str) -> str:
    if len(expr.split()) != 5 or not croniter.is_valid(expr):
        raise ValueError(f"{expr!r} is not a 5-field cron expression, e.g. \"0 2 * * *\"")
    return expr


def next_run_after(expr: str, after: datetime) -> datetime:
    """The first cron time strictly after `after` (an aware datetime), in UTC."""
    if after.tzinfo is None:
        raise ValueError("after must be timezone-aware")
    return croniter(validate_cron(expr), after.astimezone(UTC)).get_next(datetime)


def run_schedule(expr: str, run_backup: Callable[[], int], *,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], None] = time.sleep, max_runs: int | None = None,
                 verify: tuple[str, Callable[[], int]] | None = None) -> None:
    """Sleep until each cron time and run what is due (backup, or the optional restore drill);
    a failed run is logged and the loop goes on. Both due at once: the backup first."""
    tasks = {"backup": (expr, run_backup)}
    if verify:
        tasks["verify"] = verify
    start = now()
    due_at = {name: next_run_after(e, start) for name, (e, _) in tasks.items()}
    runs = 0
    while max_runs is None or runs < max_runs:
        name = min(due_at, key=lambda n: (due_at[n], n != "backup"))
        due = due_at[name]
        log.info("schedule: next %s at %s", name, due.isoformat())
        while (left := (due - now()).total_seconds()) > 0:
            sleep(min(left, 300))  # wake regularly so clock jumps (suspend, NTP) do not overshoot much
        code = tasks[name][1]()
        log.info("schedule: %s finished with exit code %d", name, code)
        # A run longer than the interval skips the times it overlapped; the other task keeps its time.
        due_at[name] = next_run_after(tasks[name][0], max(due, now()))
        runs += 1
