"""fleet_analytics' settings, arguments and rendering: the parts that need no database."""
from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fleet_analytics import errors
from fleet_analytics.cli import parse_period
from fleet_analytics.errors import ReportError
from fleet_analytics.queries import AppUsage
from fleet_analytics.render import render_html
from fleet_analytics.report import build_report, period_of
from fleet_analytics.settings import Settings

REPO = Path(__file__).resolve().parents[2]
ENV = {"ANALYTICS_APPS": "chat,chat-2", "ANALYTICS_PASSWORD_CHAT": "a", "ANALYTICS_PASSWORD_CHAT_2": "b"}


def test_settings_name_each_apps_role_database_and_password_variable() -> None:
    s = Settings.from_env(ENV)
    assert [(a.name, a.database, a.role) for a in s.apps] == [
        ("chat", "openwebui_chat", "openwebui_chat_analytics"),
        ("chat-2", "openwebui_chat_2", "openwebui_chat_2_analytics")]
    assert s.passwords == {"chat": "a", "chat-2": "b"}
    assert "'a'" not in repr(s) and "'b'" not in repr(s)


@pytest.mark.parametrize(("env", "message"), [
    ({}, "ANALYTICS_APPS is not set"),
    ({"ANALYTICS_APPS": "Chat"}, "'Chat' is not an app name"),
    ({"ANALYTICS_APPS": "chat,research"}, "ANALYTICS_PASSWORD_RESEARCH not set"),
    ({**ENV, "ANALYTICS_PRICES": "{"}, "ANALYTICS_PRICES is not JSON"),
    ({**ENV, "ANALYTICS_PRICES": '{"gpt-4o": {"input": -1, "output": 2}}'}, "ANALYTICS_PRICES['gpt-4o']"),
    ({**ENV, "ANALYTICS_PRICES": '{"gpt-4o": {"input": 1}}'}, "ANALYTICS_PRICES['gpt-4o']"),
])
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    full = {"ANALYTICS_PASSWORD_CHAT": "x", **env}
    with pytest.raises(ReportError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        Settings.from_env(full)
    assert e.value.code == errors.CONFIG


def test_periods_are_whole_utc_days() -> None:
    today = date(2026, 11, 23)
    assert parse_period("1d", None, None, today) == period_of(today, today)
    p = parse_period(None, None, None, today)  # default: the last 30 days, today included
    assert (p.end - p.start) // 86400 == 30
    assert p.end == int(datetime(2026, 11, 24, tzinfo=UTC).timestamp())
    assert parse_period(None, "2026-02-27", "2026-03-01", today).start == int(
        datetime(2026, 2, 27, tzinfo=UTC).timestamp())


@pytest.mark.parametrize(("since", "first", "last", "message"), [
    ("30", None, None, "give a number of days"),
    ("0d", None, None, "give a number of days"),
    ("7d", "2026-01-01", "2026-01-02", "not both"),
    (None, "2026-01-01", None, "go together"),
    (None, "2026-01-05", "2026-01-01", "is before"),
    (None, "2026-13-01", "2026-12-01", "is not a date"),
])
def test_bad_periods_are_refused(since: str | None, first: str | None, last: str | None, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_period(since, first, last, date(2026, 11, 23))


def test_html_escapes_names_from_the_database() -> None:
    usage = AppUsage(revision="0bd252b206fb", messages={"user": 1, "assistant": 1},
                     messages_by_model={"<script>alert(1)</script>": 1},
                     top_users=[("u1", "<img src=x onerror=alert(1)>", None, 1)],
                     files={"total": 0, "new": 0, "bytes": 0}, knowledge_bases={"total": 0, "new": 0})
    period = period_of(date(2026, 11, 1), date(2026, 11, 2))
    html = render_html(build_report({"chat": usage}, period, 5, {}, "USD", datetime(2026, 11, 3, tzinfo=UTC)))
    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_cli_reports_configuration_errors_in_one_line_and_exit_2() -> None:
    result = subprocess.run([sys.executable, "-m", "fleet_analytics", "report", "--since", "3w"], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin", **ENV}, capture_output=True, text=True)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "fleet-analytics: --since '3w': give a number of days, e.g. 30d\n"


def test_schedule_runs_at_each_cron_time_and_goes_on_after_a_failure() -> None:
    from datetime import timedelta

    from fleet_analytics.schedule import run_schedule
    clock = [datetime(2026, 11, 23, 1, 0, tzinfo=UTC)]
    runs: list[datetime] = []

    def run() -> int:
        runs.append(clock[0])
        return 3 if len(runs) == 1 else 0

    run_schedule("30 2 * * *", run, now=lambda: clock[0],
                 sleep=lambda s: clock.__setitem__(0, clock[0] + timedelta(seconds=s)), max_runs=2)
    assert runs == [datetime(2026, 11, 23, 2, 30, tzinfo=UTC), datetime(2026, 11, 24, 2, 30, tzinfo=UTC)]


def test_health_is_good_before_any_run_and_follows_the_last_one(tmp_path: Path) -> None:
    from fleet_analytics.job import JobSettings, health, record_run
    job = JobSettings.from_env({"ANALYTICS_STACK": "prod", "ANALYTICS_S3_BUCKET": "b",
                                "ANALYTICS_STATE_DIR": str(tmp_path)})
    assert health(tmp_path) == (True, "no run yet")
    record_run(job, 3, "app chat: reading failed", datetime(2026, 11, 23, 2, 30, tzinfo=UTC))
    assert health(tmp_path) == (False, "last run failed at 2026-11-23T02:30:00+00:00 (exit 3): "
                                       "app chat: reading failed")
    record_run(job, 0, None, datetime(2026, 11, 24, 2, 30, tzinfo=UTC))
    assert health(tmp_path)[0]
