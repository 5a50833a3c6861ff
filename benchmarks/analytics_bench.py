"""Time of the usage report per app, on Open WebUI's real schema with N messages per app.

    .venv/bin/python benchmarks/analytics_bench.py [--apps 3] [--messages 1000000]   (Open WebUI in $OPENWEBUI_VENV
    or .cache/openwebui-venv, as for the report's tests)

Each app database is built like the tests build it (tests/openwebui_schema.py): the app's bootstrap
SQL, Open WebUI's own migrations (the installed, pinned open-webui) and a bulk COPY of a 90-day usage
history. Then, side by side in one run, as each app's read-only analytics role:
- the whole report of one app for the last 7, 30 and all 90 days (best of --repeat runs);
- each of its queries alone, with the plan PostgreSQL chose (which of Open WebUI's indexes it used);
- the same 30-day report with Open WebUI's (model_id, created_at) / (user_id, created_at) indexes
  hidden, to show what they are worth;
- the whole report again once chat_message is stored in created_at order (CLUSTER on Open WebUI's
  ix_chat_message_created_at, as the app's role): the generated history is loaded chat by chat, so its
  rows' order has nothing to do with time, while a live Open WebUI appends messages as they are written.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import psycopg  # noqa: E402

from fleet_analytics.queries import MESSAGES_SQL, TOTALS_SQL, USERS_SQL, read_app  # noqa: E402
from fleet_analytics.report import period_of  # noqa: E402
from fleet_analytics.settings import App  # noqa: E402
from openwebui_schema import create_app_database, generate, load, openwebui_python  # noqa: E402
from realservices import postgres_server  # noqa: E402

DAYS = 90


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def plan_summary(conn: psycopg.Connection, sql: str, params: dict) -> str:
    lines = [r[0] for r in conn.execute("EXPLAIN " + sql, params)]
    nodes = [ln.strip().lstrip("-> ").split("  (")[0] for ln in lines if "Scan" in ln]
    return "; ".join(dict.fromkeys(nodes))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=3)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    python = openwebui_python()
    today = date.today()
    first = today - timedelta(days=DAYS - 1)
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    last7, last30, last90 = (period_of(today - timedelta(days=6), today), period_of(today - timedelta(days=29), today),
                             period_of(first, today))
    rows = []
    with postgres_server() as pg, tempfile.TemporaryDirectory() as work:
        os.environ.update(PGHOST=pg.host, PGPORT=str(pg.port))  # libpq's, as the report reads them
        dbs = []
        t = time.monotonic()
        for i in range(1, args.apps + 1):
            app = f"bench{i}"
            db = create_app_database(pg, app, python, Path(work))
            data = generate(app, args.messages, start, DAYS, seed=i, users=2000)
            load(db, data)
            counts = (len(data.messages), len(data.chats), len(data.users))
            del data
            gc.collect()
            dbs.append((db, counts))
        print(f"built {args.apps} app databases ({args.messages:,} messages each) in {time.monotonic() - t:.0f} s\n")
        for db, (n_messages, n_chats, n_users) in dbs:
            app = App(db.app)
            conn = psycopg.connect(host=pg.host, port=pg.port, dbname=app.database, user=app.role,
                                   password=db.analytics_password, autocommit=True)
            full7 = best(lambda: read_app(app, db.analytics_password, last7, 10, False), args.repeat)
            full30 = best(lambda: read_app(app, db.analytics_password, last30, 10, False), args.repeat)
            full90 = best(lambda: read_app(app, db.analytics_password, last90, 10, False), args.repeat)
            params = {"start": last30.start, "end": last30.end, "top": 10}
            per_query = {name: (best(lambda s=sql: conn.execute(s, params).fetchall(), args.repeat),
                                plan_summary(conn, sql, params))
                         for name, sql in (("messages", MESSAGES_SQL), ("users", USERS_SQL), ("totals", TOTALS_SQL))}
            week = {"start": last7.start, "end": last7.end, "top": 10}
            plans7 = {name: plan_summary(conn, sql, week) for name, sql in (("messages", MESSAGES_SQL), ("users", USERS_SQL))}
            size = conn.execute("SELECT pg_size_pretty(pg_total_relation_size('chat_message'))").fetchone()[0]
            conn.close()
            # Without Open WebUI's composite indexes (dropped inside a transaction that is rolled back).
            with db.connect_as_app() as owner:
                owner.autocommit = False
                owner.execute("DROP INDEX chat_message_model_created_idx, chat_message_user_created_idx, "
                              "ix_chat_message_created_at")
                t = time.perf_counter()
                for _ in range(args.repeat):
                    owner.execute(MESSAGES_SQL, params).fetchall()
                    owner.execute(USERS_SQL, params).fetchall()
                no_index = (time.perf_counter() - t) / args.repeat
                owner.rollback()
            # Rows in time order, as a live app writes them (CLUSTER rewrites the table once, as its owner).
            with db.connect_as_app() as owner:
                owner.execute("CLUSTER chat_message USING ix_chat_message_created_at")
                owner.execute("ANALYZE chat_message")
            ordered = tuple(best(lambda p=p: read_app(app, db.analytics_password, p, 10, False), args.repeat)
                            for p in (last7, last30, last90))
            rows.append((db.app, n_messages, n_chats, n_users, size, full7, full30, full90, per_query, no_index, plans7,
                         ordered))
    print(f"load average (1 min) after measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs\n")
    print("| app | messages | chats | users | chat_message size | report, 7 days (s) | report, 30 days (s) "
          "| report, 90 days = all (s) | 30 days: messages query (s) | users query (s) | totals query (s) "
          "| messages+users, Open WebUI's created_at/composite indexes dropped (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for app, n, c, u, size, r7, r30, r90, q, no_index, _, _ in rows:
        print(f"| {app} | {n:,} | {c:,} | {u:,} | {size} | {r7:.3f} | {r30:.3f} | {r90:.3f} | {q['messages'][0]:.3f} "
              f"| {q['users'][0]:.3f} | {q['totals'][0]:.3f} | {no_index:.3f} |")
    print("\nthe same report, rows as loaded (chat by chat) vs in created_at order (as a live app appends them):\n")
    print("| app | 7 days, as loaded (s) | 7 days, time order (s) | 30 days, as loaded (s) | 30 days, time order (s) "
          "| 90 days, as loaded (s) | 90 days, time order (s) |")
    print("|---|---|---|---|---|---|---|")
    for app, _, _, _, _, r7, r30, r90, _, _, _, (o7, o30, o90) in rows:
        print(f"| {app} | {r7:.3f} | {o7:.3f} | {r30:.3f} | {o30:.3f} | {r90:.3f} | {o90:.3f} |")
    print("\nplans (30 days):")
    for name, (_, plan) in rows[0][8].items():
        print(f"  {name}: {plan}")
    print("plans (7 days):")
    for name, plan in rows[0][10].items():
        print(f"  {name}: {plan}")
    total30, ordered30 = sum(r[6] for r in rows), sum(r[11][1] for r in rows)
    print(f"\nall {len(rows)} apps, 30 days: {total30:.3f} s ({total30 / len(rows):.3f} s per app; goal < 1 s per app); "
          f"in time order {ordered30:.3f} s ({ordered30 / len(rows):.3f} s per app)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
