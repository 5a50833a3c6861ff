"""Usage reports of the fleet's Open WebUI apps, read straight from each app's PostgreSQL database.

  python -m fleet_analytics report [--app A]... [--since 30d | --from YYYY-MM-DD --to YYYY-MM-DD]
                                   [--format json|csv|html] [--top N] [--emails] [-o FILE]

Each app is read as its own read-only role (openwebui_<app>_analytics, created by the app's database
bootstrap), in one read-only snapshot. Message content is never read into a report; emails only with
--emails. A database at an alembic revision the report was not tested with is refused (exit 4), naming
the revision and the supported ones, rather than reported with possibly wrong numbers.

Environment (secrets are never printed):

  ANALYTICS_APPS            required  comma-separated app names, e.g. chat,research
  PGHOST, PGPORT            read by libpq: the shared PostgreSQL
  ANALYTICS_PASSWORD_<APP>  secret    each app's analytics role password; <APP> is the app name in
                                      upper case with '-' as '_' (app chat-2: ANALYTICS_PASSWORD_CHAT_2)
  ANALYTICS_PRICES          optional  {"<model id>": {"input": <per 1M tokens>, "output": <per 1M>}}:
                                      adds cost_by_model and cost
  ANALYTICS_CURRENCY        optional  label of those prices, default USD

JSON (schema "fleet-analytics/1"; days are UTC; tools may rely on every key below):

  {"schema": "fleet-analytics/1", "generated_at": "2026-11-23T02:00:00Z",
   "period": {"from": "2026-10-25", "to": "2026-11-23", "days": 30},
   "currency": "USD",                           only with ANALYTICS_PRICES
   "apps": {"<app>": {
       "alembic_revision": "0bd252b206fb",
       "users": 120,                             registered users (all time)
       "active_users": 45,                       users who sent a message in the period
       "chats": 310,                             chats created in the period
       "messages": {"user": 2000, "assistant": 1990},
       "messages_by_model": {"<model>": 1500},   assistant messages, most used first
       "tokens_by_model": {"<model>": {"input": 1000, "output": 900}},
                                                 assistant messages that carry usage
       "daily": {"2026-10-25": 130, ...},        user + assistant messages, every day of the period
       "top_users": [{"user_id": "…", "name": "…", "email": "…" (only with --emails), "messages": 80}],
                                                 most messages sent in the period, at most --top
       "files": {"total": 40, "new": 5, "bytes": 1234567},
       "knowledge_bases": {"total": 3, "new": 1},
       "cost_by_model": {"<model>": 1.25}, "cost": 1.25}},   only with ANALYTICS_PRICES
   "all": the same sums over the apps (apps are separate user bases), without alembic_revision;
          its top_users carry an "app" key}

CSV: one row per number, columns app (or all), metric, key, field, value.

Exit codes: 0 ok; 1 unexpected error; 2 configuration/arguments; 3 a database could not be read;
4 a database is at an unsupported alembic revision; 5 the scheduled job could not store the report.
"""
