"""What the job did last, kept in a file on its volume (a restart does not lose it): status and health."""
from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from croniter import croniter

from fleet_backup.schedule import next_run_after


def _now() -> datetime:
    return datetime.now(UTC)


class State:
    """One JSON file, replaced atomically on each write."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def update(self, **changes: Any) -> dict[str, Any]:
        state = {**self.read(), **changes}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".state-")
        with os.fdopen(fd, "w") as f:
            json.dump(state, f, indent=2, sort_keys=True)
        os.replace(tmp, self.path)
        return state

    def record(self, command: str, code: int, reason: str | None, started: datetime,
               details: dict[str, Any] | None = None) -> dict[str, Any]:
        """The outcome of one command; backup and verify outcomes are what health and status report."""
        finished = _now()
        run = {"command": command, "exitCode": code, "startedAt": started.isoformat(),
               "finishedAt": finished.isoformat(), "durationSeconds": round((finished - started).total_seconds(), 3),
               **(details or {})}
        if reason:
            run["reason"] = reason
        changes: dict[str, Any] = {}
        if command == "backup":
            changes["lastBackup"] = run
            changes["lastSuccess" if code == 0 else "lastFailure"] = run
        elif command == "verify":
            changes["lastVerify"] = run
            if code != 0:
                changes["lastFailure"] = run
        return self.update(**changes) if changes else self.read()


def interval(expr: str, at: datetime) -> timedelta:
    """The gap between the two cron times before `at`: what 'one interval late' means for this schedule."""
    prev = croniter(expr, at).get_prev(datetime)
    return prev - croniter(expr, prev).get_prev(datetime)


def health(state: dict[str, Any], now: datetime | None = None) -> tuple[bool, str]:
    """Unhealthy when the last backup failed, or the last success (or the start) is over two intervals old."""
    now = now or _now()
    expr = state.get("schedule")
    if not expr:
        return False, "no schedule is running (the container runs `schedule`; see `status`)"
    last = state.get("lastBackup")
    if last and last["exitCode"] != 0:
        return False, f"the last backup failed (exit {last['exitCode']}): {last.get('reason', '?')}"
    limit = 2 * interval(expr, now)
    success = state.get("lastSuccess")
    since = datetime.fromisoformat(success["finishedAt"] if success else state["scheduleStartedAt"])
    if now - since > limit:
        what = "the last successful backup" if success else "the schedule started and no backup has succeeded; it"
        return False, f"{what} is {_age(now - since)} old, over twice the schedule's interval ({_age(limit)})"
    return True, "ok"


def _age(delta: timedelta) -> str:
    hours = delta.total_seconds() / 3600
    return f"{hours:.1f} h"


def report(state: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """`status --json`: last success, last failure with its reason, next runs, last drill, health."""
    now = now or _now()
    ok, why = health(state, now)
    out: dict[str, Any] = {"healthy": ok, "health": why,
                           **{k: state.get(k) for k in ("lastSuccess", "lastFailure", "lastBackup", "lastVerify",
                                                        "schedule", "verifySchedule")}}
    for key, expr in (("nextBackup", state.get("schedule")), ("nextVerify", state.get("verifySchedule"))):
        out[key] = next_run_after(expr, now).isoformat() if expr else None
    return out


def render(status: dict[str, Any]) -> str:
    """`status` for a person: one line per fact."""
    def run(r: dict[str, Any] | None) -> str:
        if not r:
            return "never"
        text = f"{r['finishedAt']} ({r['durationSeconds']} s"
        if r.get("runId"):
            text += f", run {r['runId']}"
        if r.get("bytesPerApp"):
            text += ", " + ", ".join(f"{app} {size} bytes" for app, size in sorted(r["bytesPerApp"].items()))
        text += ")"
        if r["exitCode"] != 0:
            text += f" exit {r['exitCode']}: {r.get('reason', '?')}"
        return text

    verify = status["lastVerify"]
    lines = [f"health:         {'ok' if status['healthy'] else 'UNHEALTHY: ' + status['health']}",
             f"last success:   {run(status['lastSuccess'])}",
             f"last failure:   {run(status['lastFailure'])}",
             f"next backup:    {status['nextBackup'] or 'not scheduled'}"
             + (f" (cron {status['schedule']})" if status["schedule"] else ""),
             f"last verify:    {'never' if not verify else ('ok ' if verify['exitCode'] == 0 else 'FAILED ') + run(verify)}",
             f"next verify:    {status['nextVerify'] or 'not scheduled'}"
             + (f" (cron {status['verifySchedule']})" if status["verifySchedule"] else "")]
    return "\n".join(lines)
