"""The report as CSV and as one self-contained HTML page (inline SVG charts, no requests to any host)."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

_env = jinja2.Environment(loader=jinja2.PackageLoader("fleet_analytics", "templates"),
                          autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.filters["num"] = lambda n: f"{n:,}"


def render_json(report: Mapping[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"


def render_csv(report: Mapping[str, Any]) -> str:
    """One row per number: app (or `all`), metric, key (model, date, user id), field, value."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["app", "metric", "key", "field", "value"])
    sections = {**report["apps"], "all": report["all"]}
    for app, s in sections.items():
        for metric in ("users", "active_users", "chats"):
            w.writerow([app, metric, "", "", s[metric]])
        for role, n in s["messages"].items():
            w.writerow([app, "messages", role, "", n])
        for model, n in s["messages_by_model"].items():
            w.writerow([app, "messages_by_model", model, "", n])
        for model, tokens in s["tokens_by_model"].items():
            for field, n in tokens.items():
                w.writerow([app, "tokens_by_model", model, field, n])
        for day, n in s["daily"].items():
            w.writerow([app, "daily", day, "", n])
        for user in s["top_users"]:
            key = f"{user['app']}/{user['user_id']}" if app == "all" else user["user_id"]
            for field in ("name", "email", "messages"):
                if field in user:
                    w.writerow([app, "top_users", key, field, user[field]])
        for metric in ("files", "knowledge_bases"):
            for field, n in s[metric].items():
                w.writerow([app, metric, "", field, n])
        if "cost" in s:
            for model, cost in s["cost_by_model"].items():
                w.writerow([app, "cost_by_model", model, report["currency"], cost])
            w.writerow([app, "cost", "", report["currency"], s["cost"]])
    return out.getvalue()


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    label: str
    value: int


@dataclass(frozen=True)
class Chart:
    """A bar chart in a 600 x 220 viewBox: the page scales it to the screen's width."""
    bars: Sequence[Bar]
    max_value: int
    first: str
    last: str


def daily_chart(daily: Mapping[str, int]) -> Chart:
    days = list(daily.items())
    top = max((n for _, n in days), default=0) or 1
    step = 600 / max(len(days), 1)
    bars = [Bar(x=round(i * step + step * 0.1, 2), y=round(190 - 160 * n / top, 2), width=round(step * 0.8, 2),
                height=round(160 * n / top, 2), label=day, value=n) for i, (day, n) in enumerate(days)]
    return Chart(bars, max(n for _, n in days) if days else 0, days[0][0] if days else "", days[-1][0] if days else "")


def render_html(report: Mapping[str, Any]) -> str:
    sections = {**report["apps"], "all": report["all"]} if len(report["apps"]) > 1 else dict(report["apps"])
    charts = {app: daily_chart(s["daily"]) for app, s in sections.items()}
    return _env.get_template("report.html.j2").render(report=report, sections=sections, charts=charts)
