"""What one app's database says about a period: read-only SQL on Open WebUI's own tables.

The semantics follow Open WebUI's own admin analytics (models/chat_messages.py): one chat_message row per
message, `created_at` in epoch seconds, models and tokens counted on assistant messages, tokens from the
normalized `input_tokens`/`output_tokens` keys of `usage`, else OpenAI's `prompt_tokens`/`completion_tokens`.
Message content is never selected.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

from fleet_analytics.errors import DATABASE, UNKNOWN_SCHEMA, ReportError
from fleet_analytics.settings import App

# alembic revisions of Open WebUI's schema this report was tested against (tests/realfleet).
SUPPORTED_REVISIONS = {"0bd252b206fb": "Open WebUI 0.12.4"}

DAY = 86400

@dataclass(frozen=True)
class Period:
    """[start, end) in epoch seconds, whole UTC days."""
    start: int
    end: int


@dataclass
class AppUsage:
    revision: str
    users: int = 0
    active_users: int = 0
    chats: int = 0
    messages: dict[str, int] = field(default_factory=lambda: {"user": 0, "assistant": 0})
    messages_by_model: dict[str, int] = field(default_factory=dict)
    tokens_by_model: dict[str, dict[str, int]] = field(default_factory=dict)
    daily: dict[int, int] = field(default_factory=dict)  # UTC day number (epoch // 86400) -> messages
    top_users: list[tuple[str, str, str | None, int]] = field(default_factory=list)  # id, name, email, messages
    files: dict[str, int] = field(default_factory=dict)
    knowledge_bases: dict[str, int] = field(default_factory=dict)


def _tokens(key: str, fallback: str) -> str:
    # JSON numbers only: anything else counts as absent rather than failing the whole report.
    def number(k: str) -> str:
        return f"CASE WHEN jsonb_typeof(u->'{k}') = 'number' THEN (u->>'{k}')::numeric END"
    return f"sum(coalesce({number(key)}, {number(fallback)}))"


# One parallel scan of the period's messages. `usage` is parsed once per row: the set-returning
# unnest() keeps PostgreSQL from inlining the parse into each of the four key lookups.
MESSAGES_SQL = f"""
SELECT role, model_id, day, count(*) AS n,
       {_tokens('input_tokens', 'prompt_tokens')} AS input,
       {_tokens('output_tokens', 'completion_tokens')} AS output
  FROM (SELECT role, model_id, created_at / {DAY} AS day,
               unnest(ARRAY[CASE WHEN role = 'assistant' THEN usage::jsonb END]) AS u
          FROM chat_message
         WHERE created_at >= %(start)s AND created_at < %(end)s AND role IN ('user', 'assistant')) m
 GROUP BY 1, 2, 3
"""

# Messages a person sent; the name and email come from the user table (emails only when asked for).
USERS_SQL = """
SELECT m.user_id, coalesce(u.name, ''), u.email, m.n, count(*) OVER () AS active
  FROM (SELECT user_id, count(*) AS n FROM chat_message
         WHERE created_at >= %(start)s AND created_at < %(end)s AND role = 'user' AND user_id IS NOT NULL
         GROUP BY user_id) m
  LEFT JOIN "user" u ON u.id = m.user_id
 ORDER BY m.n DESC, m.user_id
 LIMIT %(top)s
"""

TOTALS_SQL = """
SELECT (SELECT count(*) FROM "user"),
       (SELECT count(*) FROM chat WHERE created_at >= %(start)s AND created_at < %(end)s),
       (SELECT count(*) FROM file),
       (SELECT count(*) FROM file WHERE created_at >= %(start)s AND created_at < %(end)s),
       (SELECT coalesce(sum(CASE WHEN (meta->>'size') ~ '^[0-9]{1,15}$'
                                 THEN (meta->>'size')::bigint END), 0) FROM file),
       (SELECT count(*) FROM knowledge),
       (SELECT count(*) FROM knowledge WHERE created_at >= %(start)s AND created_at < %(end)s)
"""


def check_revision(app: App, revision: str | None) -> str:
    if revision not in SUPPORTED_REVISIONS:
        supported = ", ".join(f"{r} ({v})" for r, v in SUPPORTED_REVISIONS.items())
        raise ReportError(UNKNOWN_SCHEMA, f"app {app.name}: its database is at alembic revision {revision!r}, "
                                          f"which this report was not tested with (supported: {supported}); "
                                          "no numbers reported rather than possibly wrong ones")
    return revision


def read_app(app: App, password: str, period: Period, top: int, emails: bool) -> AppUsage:
    """Everything the report shows for one app, from one read-only snapshot of its database."""
    try:
        with psycopg.connect(dbname=app.database, user=app.role, password=password,
                             application_name="fleet-analytics", connect_timeout=10) as conn:
            conn.read_only = True
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ  # one consistent snapshot
            with conn.transaction():
                return _read(conn, app, period, top, emails)
    except psycopg.Error as e:
        raise ReportError(DATABASE, f"app {app.name}: reading {app.database} as {app.role} failed: "
                                    f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None


def _read(conn: psycopg.Connection, app: App, period: Period, top: int, emails: bool) -> AppUsage:
    params = {"start": period.start, "end": period.end, "top": top}
    revisions = conn.execute("SELECT version_num FROM alembic_version").fetchall() \
        if conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0] else []
    usage = AppUsage(revision=check_revision(app, revisions[0][0] if len(revisions) == 1 else
                                             ",".join(sorted(r[0] for r in revisions)) or None))
    for role, model, day, n, input_tokens, output_tokens in conn.execute(MESSAGES_SQL, params):
        usage.messages[role] += n
        usage.daily[day] = usage.daily.get(day, 0) + n
        if role == "assistant" and model is not None:
            usage.messages_by_model[model] = usage.messages_by_model.get(model, 0) + n
            if input_tokens is not None or output_tokens is not None:
                tokens = usage.tokens_by_model.setdefault(model, {"input": 0, "output": 0})
                tokens["input"] += int(input_tokens or 0)
                tokens["output"] += int(output_tokens or 0)
    rows = conn.execute(USERS_SQL, params).fetchall() if top > 0 else []
    usage.top_users = [(uid, name, email if emails else None, n) for uid, name, email, n, _ in rows]
    usage.active_users = rows[0][4] if rows else conn.execute(
        "SELECT count(DISTINCT user_id) FROM chat_message WHERE created_at >= %(start)s "
        "AND created_at < %(end)s AND role = 'user'", params).fetchone()[0]
    (usage.users, usage.chats, files, new_files, file_bytes, kbs, new_kbs) = conn.execute(TOTALS_SQL, params).fetchone()
    usage.files = {"total": files, "new": new_files, "bytes": int(file_bytes)}
    usage.knowledge_bases = {"total": kbs, "new": new_kbs}
    return usage
