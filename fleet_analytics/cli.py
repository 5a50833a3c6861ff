"""Command line: python -m fleet_analytics report [--app A]... [--since 30d | --from D --to D] [--format F]."""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime

import fleet_analytics
from fleet_analytics import errors
from fleet_analytics.errors import ReportError
from fleet_analytics.queries import Period, read_app
from fleet_analytics.render import render_csv, render_html, render_json
from fleet_analytics.report import build_report, period_of, since_period
from fleet_analytics.settings import Settings

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
    usages = {a.name: read_app(a, settings.passwords[a.name], period, args.top, args.emails) for a in apps}
    report = build_report(usages, period, args.top, settings.prices, settings.currency, now)
    return RENDERERS[args.format](report)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        text = run_report(args, Settings.from_env(), datetime.now(UTC))
    except ReportError as e:
        print(f"fleet-analytics: {e}", file=sys.stderr)
        return e.code
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return errors.OK
