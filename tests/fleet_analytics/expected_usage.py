"""What the report must say, worked out from the rows the tests loaded (never from fleet_analytics)."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from openwebui_schema import Dataset


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def expected(ds: Dataset, first: date, last: date, top: int) -> dict[str, Any]:
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    end = start + ((last - first).days + 1) * 86400
    inside = [m for m in ds.messages if start <= m[6] < end]
    sent = Counter(m[2] for m in inside if m[3] == "user")
    tokens: dict[str, dict[str, int]] = {}
    for _, _, _, role, model, usage, _ in inside:
        if role != "assistant" or model is None or usage is None:
            continue
        i = _int(usage.get("input_tokens")) if _int(usage.get("input_tokens")) is not None \
            else _int(usage.get("prompt_tokens"))
        o = _int(usage.get("output_tokens")) if _int(usage.get("output_tokens")) is not None \
            else _int(usage.get("completion_tokens"))
        if i is not None or o is not None:
            t = tokens.setdefault(model, {"input": 0, "output": 0})
            t["input"] += i or 0
            t["output"] += o or 0
    daily = {(first + timedelta(days=d)).isoformat(): 0 for d in range((last - first).days + 1)}
    for m in inside:
        daily[datetime.fromtimestamp(m[6], UTC).date().isoformat()] += 1
    names = {u[0]: u[1] for u in ds.users}
    return {
        "users": len(ds.users),
        "active_users": len(sent),
        "chats": sum(start <= c[2] < end for c in ds.chats),
        "messages": {"user": sum(m[3] == "user" for m in inside), "assistant": sum(m[3] == "assistant" for m in inside)},
        "messages_by_model": dict(Counter(m[4] for m in inside if m[3] == "assistant" and m[4] is not None)),
        "tokens_by_model": tokens,
        "daily": daily,
        "top_users": [{"user_id": uid, "name": names[uid], "messages": n}
                      for uid, n in sorted(sent.items(), key=lambda kv: (-kv[1], kv[0]))[:top]],
        "files": {"total": len(ds.files), "new": sum(start <= f[2] < end for f in ds.files),
                  "bytes": sum(f[3] or 0 for f in ds.files)},
        "knowledge_bases": {"total": len(ds.knowledge), "new": sum(start <= k[2] < end for k in ds.knowledge)},
    }
