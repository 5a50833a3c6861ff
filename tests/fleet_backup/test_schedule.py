"""The schedule loop: next cron time is a pure function; the loop is driven by a fake clock."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleet_backup.schedule import next_run_after, run_schedule


def test_next_run_is_the_next_cron_time_strictly_after_now_in_utc():
    assert next_run_after("0 2 * * *", datetime(2026, 11, 22, 1, 59, tzinfo=UTC)) == \
        datetime(2026, 11, 22, 2, 0, tzinfo=UTC)
    assert next_run_after("0 2 * * *", datetime(2026, 11, 22, 2, 0, tzinfo=UTC)) == \
        datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    assert next_run_after("30 3 * * 1", datetime(2026, 11, 22, 12, 0, tzinfo=cet)) == \
        datetime(2026, 11, 23, 3, 30, tzinfo=UTC)  # Monday, UTC


@pytest.mark.parametrize("expr", ["0 2 * *", "61 2 * * *", "0 0 2 * * *", "every night"])
def test_invalid_cron_expressions_are_rejected(expr):
    with pytest.raises(ValueError, match="5-field cron"):
        next_run_after(expr, datetime(2026, 1, 1, tzinfo=UTC))


def test_loop_sleeps_until_each_cron_time_and_keeps_going_after_a_failed_run():
    clock = [datetime(2026, 11, 22, 1, 0, tzinfo=UTC)]
    slept: list[float] = []
    ran_at: list[datetime] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += timedelta(seconds=seconds)

    def backup() -> int:
        ran_at.append(clock[0])
        clock[0] += timedelta(minutes=5)  # a backup takes time
        return 4 if len(ran_at) == 1 else 0  # first run fails; the loop must continue

    run_schedule("0 2 * * *", backup, now=lambda: clock[0], sleep=sleep, max_runs=2)

    assert ran_at == [datetime(2026, 11, 22, 2, 0, tzinfo=UTC), datetime(2026, 11, 23, 2, 0, tzinfo=UTC)]
    assert max(slept) <= 300 and sum(slept) == pytest.approx((3600 + 86400 - 300))
