"""Command line: python -m fleet_analytics report [--app A]... [--since 30d | --from D --to D] [--format F]."""
from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

from botocore.exceptions import BotoCoreError, ClientError

import fleet_analytics
from fleet_analytics import errors
from fleet_analytics.errors import ReportError
from fleet_analytics.job import JobSettings, health, publish, record_run
from fleet_analytics.queries import Period, read_app
from fleet_analytics.render import render_csv, render_html, render_json
from fleet_analytics.report import build_report, period_of, since_period
from fleet_analytics.schedule import run_schedule, validate_cron
from fleet_analytics.settings import App, Settings

RENDERERS: dict[str, Callable[[dict], str]] = {"json": render_json, "csv": render_csv, "html": render_html}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m fleet_analytics", description=fleet_analytics.__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("report", help="usage of every app (or the --app ones) over a period")
    r.add_argument("--app", action="append", dest="apps", metavar="NAME", help="only this app (repeat)")
    r.add_argument("--since", help="the last N days, today included, e.g. 30d (default 30d)")
    r.add_argument("--from", dest="first", help="first day, YYYY-MM-DD (UTC), with --to")
    r.add_argument("--to", dest="last", help="last day, YYYY-MM-DD (UTC), included")
    r.add_argument("--format", choices=sorted(RENDERERS), default="json")
    r.add_argument("--top", type=int, default=10, help="how many top users to list (default 10)")
    r.add_argument("--emails", action="store_true", help="show users' emails (they are left out by default)")
    r.add_argument("--output", "-o", help="write to this file instead of stdout")
    sub.add_parser("publish", help="the scheduled job's run, once: the report of the last "
                                   "ANALYTICS_SINCE_DAYS days in every format to the bucket")
    s = sub.add_parser("schedule", help="publish at every cron time (UTC), forever")
    s.add_argument("--cron", required=True, help='5-field cron expression, e.g. "30 2 * * *"')
    sub.add_parser("health", help="exit 1 when the last scheduled run failed (the container's healthcheck)")
    return p


def _day(flag: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ReportError(errors.CONFIG, f"{flag} {text!r} is not a date: give YYYY-MM-DD") from None


def parse_period(since: str | None, first: str | None, last: str | None, today: date) -> Period:
    if since and (first or last):
        raise ReportError(errors.CONFIG, "give either --since or --from/--to, not both")
    if first or last:
        if not (first and last):
            raise ReportError(errors.CONFIG, "--from and --to go together")
        a, b = _day("--from", first), _day("--to", last)
        if b < a:
            raise ReportError(errors.CONFIG, f"--to {last} is before --from {first}")
        return period_of(a, b)
    m = re.fullmatch(r"([1-9][0-9]{0,3})d", since or "30d")
    if not m:
        raise ReportError(errors.CONFIG, f"--since {since!r}: give a number of days, e.g. 30d")
    return since_period(int(m[1]), today)


def run_report(args: argparse.Namespace, settings: Settings, now: datetime) -> str:
    if args.top < 0:
        raise ReportError(errors.CONFIG, f"--top {args.top}: give 0 or more")
    known = {a.name: a for a in settings.apps}
    unknown = [a for a in args.apps or [] if a not in known]
    if unknown:
        raise ReportError(errors.CONFIG, f"--app {', '.join(unknown)}: not in ANALYTICS_APPS ({', '.join(known)})")
    period = parse_period(args.since, args.first, args.last, now.astimezone(UTC).date())
    apps = [known[a] for a in dict.fromkeys(args.apps)] if args.apps else list(settings.apps)
    return RENDERERS[args.format](make_report(settings, apps, period, args.top, args.emails, now))


def make_report(settings: Settings, apps: list[App], period: Period, top: int, emails: bool, now: datetime) -> dict:
    usages = {a.name: read_app(a, settings.passwords[a.name], period, top, emails) for a in apps}
    return build_report(usages, period, top, settings.prices, settings.currency, now)


def run_publish(settings: Settings, job: JobSettings, now: datetime) -> int:
    """One scheduled run; its outcome is what `health` reports."""
    code, error = errors.OK, None
    try:
        report = make_report(settings, list(settings.apps), since_period(job.since_days, now.astimezone(UTC).date()),
                             10, False, now)
        keys = publish(job, {ext: render(report) for ext, render in RENDERERS.items()}, now)
        logging.getLogger("fleet_analytics").info("publish: wrote %s", ", ".join(keys))
    except ReportError as e:
        code, error = e.code, str(e)
    except (BotoCoreError, ClientError) as e:
        code, error = errors.UPLOAD_FAILED, f"S3: {e}"
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback with env values
        code, error = errors.UNEXPECTED, f"{type(e).__name__}: {e}"
    if error:
        logging.getLogger("fleet_analytics").error("publish failed: %s", error)
    record_run(job, code, error, datetime.now(UTC))
    return code


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s fleet-analytics %(levelname)s %(message)s")
    args = _parser().parse_args(argv)
    try:
        if args.command == "health":
            ok, message = health(JobSettings.from_env().state_dir)
            print(message)
            return errors.OK if ok else errors.UNEXPECTED
        settings = Settings.from_env()
        if args.command in ("publish", "schedule"):
            job = JobSettings.from_env()
            if args.command == "publish":
                return run_publish(settings, job, datetime.now(UTC))
            run_schedule(validate_cron(args.cron), lambda: run_publish(settings, job, datetime.now(UTC)))
            return errors.OK
        text = run_report(args, settings, datetime.now(UTC))
    except ReportError as e:
        print(f"fleet-analytics: {e}", file=sys.stderr)
        return e.code
    except ValueError as e:  # a bad --cron
        print(f"fleet-analytics: {e}", file=sys.stderr)
        return errors.CONFIG
    except Exception as e:  # noqa: BLE001 - last resort: one line, no traceback with env values
        print(f"fleet-analytics: unexpected {type(e).__name__}: {e}", file=sys.stderr)
        return errors.UNEXPECTED
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return errors.OK
