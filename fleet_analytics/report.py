"""The report as one JSON-ready dict (its shape is documented in fleet_analytics/__init__.py)."""
from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from fleet_analytics.queries import DAY, AppUsage, Period
from fleet_analytics.settings import Price

SCHEMA = "fleet-analytics/1"


def period_of(first: date, last: date) -> Period:
    """Whole UTC days from `first` to `last`, both included."""
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return Period(int(start.timestamp()), int(start.timestamp()) + ((last - first).days + 1) * DAY)


def _days(period: Period) -> list[str]:
    return [datetime.fromtimestamp(t, UTC).date().isoformat() for t in range(period.start, period.end, DAY)]


def _app_section(usage: AppUsage, period: Period, prices: Mapping[str, Price]) -> dict[str, Any]:
    daily = {d: 0 for d in _days(period)}
    for day, n in usage.daily.items():
        daily[datetime.fromtimestamp(day * DAY, UTC).date().isoformat()] += n
    section: dict[str, Any] = {
        "alembic_revision": usage.revision,
        "users": usage.users,
        "active_users": usage.active_users,
        "chats": usage.chats,
        "messages": dict(usage.messages),
        "messages_by_model": dict(sorted(usage.messages_by_model.items(), key=lambda kv: (-kv[1], kv[0]))),
        "tokens_by_model": {m: dict(t) for m, t in sorted(usage.tokens_by_model.items())},
        "daily": daily,
        "top_users": [{"user_id": uid, "name": name, **({"email": email} if email is not None else {}),
                       "messages": n} for uid, name, email, n in usage.top_users],
        "files": dict(usage.files),
        "knowledge_bases": dict(usage.knowledge_bases),
    }
    if prices:
        section["cost_by_model"] = _costs(section["tokens_by_model"], prices)
        section["cost"] = round(sum(section["cost_by_model"].values()), 6)
    return section


def _costs(tokens_by_model: Mapping[str, Mapping[str, int]], prices: Mapping[str, Price]) -> dict[str, float]:
    """Models without a price are left out (they cost nothing we know of)."""
    return {m: round((t["input"] * prices[m].input + t["output"] * prices[m].output) / 1_000_000, 6)
            for m, t in tokens_by_model.items() if m in prices}


def _add(into: dict[str, Any], counts: Mapping[str, Any]) -> None:
    for key, value in counts.items():
        if isinstance(value, Mapping):
            _add(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def _all_section(apps: Mapping[str, dict[str, Any]], top: int, prices: Mapping[str, Price]) -> dict[str, Any]:
    """Apps are separate user bases, so users, chats and messages add up across them."""
    total: dict[str, Any] = {"users": 0, "active_users": 0, "chats": 0, "messages": {"user": 0, "assistant": 0},
                             "messages_by_model": {}, "tokens_by_model": {}, "daily": {},
                             "files": {}, "knowledge_bases": {}}
    for section in apps.values():
        _add(total, {k: section[k] for k in total})
    total["messages_by_model"] = dict(sorted(total["messages_by_model"].items(), key=lambda kv: (-kv[1], kv[0])))
    total["tokens_by_model"] = dict(sorted(total["tokens_by_model"].items()))
    total["daily"] = dict(sorted(total["daily"].items()))
    total["top_users"] = sorted(({"app": app, **u} for app, s in apps.items() for u in s["top_users"]),
                                key=lambda u: (-u["messages"], u["app"], u["user_id"]))[:top]
    if prices:
        total["cost_by_model"] = _costs(total["tokens_by_model"], prices)
        total["cost"] = round(sum(total["cost_by_model"].values()), 6)
    return total


def build_report(usages: Mapping[str, AppUsage], period: Period, top: int,
                 prices: Mapping[str, Price], currency: str, now: datetime) -> dict[str, Any]:
    apps = {name: _app_section(usages[name], period, prices) for name in sorted(usages)}
    report: dict[str, Any] = {
        "schema": SCHEMA,
        "generated_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "period": {"from": _days(period)[0], "to": _days(period)[-1], "days": (period.end - period.start) // DAY},
        "apps": apps,
        "all": _all_section(apps, top, prices),
    }
    if prices:
        report["currency"] = currency
    return report


def since_period(days: int, today: date) -> Period:
    return period_of(today - timedelta(days=days - 1), today)
