"""The same usage numbers two ways, on the real fleet (tests/realfleet): Open WebUI's HTTP API, fetched as a
sync tool does, against `python -m fleet_analytics report` on the app's database. Calls, seconds, ratio.

    OPENWEBUI_VENV=/path/to/venv flock /tmp/realfleet.lock .venv/bin/python benchmarks/analytics_api_bench.py \
        [--users 30] [--chats 8] [--turns 5] [--repeat 3]                      # as root

Brings up tests/realfleet/Pulumi.realfleet.yaml (about 2 minutes) and fills app `chat` through its own API:
users with /api/v1/auths/add, chats with their messages (spread over the last 20 days, models and token
usage on the answers) with /api/v1/chats/new, which Open WebUI 0.12.4 also writes to its chat_message
table. Then, as the app's admin through the load balancer:
- per chat: /api/v1/users/all, /api/v1/chats/list/user/{id}?page=N for each user (60 a page), and
  /api/v1/chats/{id} for each chat: what a sync tool that copies every chat does;
- bulk: /api/v1/users/all and /api/v1/chats/all/db (every chat of every user in one answer; needs
  ENABLE_ADMIN_EXPORT, on by default).
Both compute users, active users, chats, messages, messages by model, tokens by model and daily volume
for the last 30 days, which must equal the report's JSON (the run fails otherwise). The fleet is always
taken down. Only the namespaces' addresses (198.18.0.0/24) are contacted.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fleet_analytics.queries import read_app  # noqa: E402
from fleet_analytics.report import period_of  # noqa: E402
from fleet_analytics.settings import App  # noqa: E402
from plan.engine import CONTAINER, evaluate, read_stack_file  # noqa: E402
from tests.realfleet.client import Api, resolving  # noqa: E402
from tests.realfleet.runner import DEFAULT_CONFIG, STACK, Runner, down  # noqa: E402

APP = "chat"
SINCE_DAYS = 30
MODELS = ["gpt-4o", "llama3.1:8b", "mistral-small"]
DAY = 86400
COMPARED = ("users", "active_users", "chats", "messages", "messages_by_model", "tokens_by_model", "daily")


def fill(admin: Api, users: int, chats: int, turns: int, now: int, seed: int = 7) -> None:
    """Users, and their chats with `turns` question/answer pairs each, through the app's API."""
    rng = random.Random(seed)
    for i in range(users):
        r = admin.post("/api/v1/auths/add", json={"name": f"User {i}", "email": f"user{i}@chat.rf.test",
                                                  "password": uuid.uuid4().hex, "role": "user"})
        r.raise_for_status()
        user = admin.as_user(admin.base)
        user.token = r.json()["token"]
        for c in range(chats):
            at = now - rng.randrange(0, 20) * DAY - rng.randrange(0, 3600)
            messages: dict[str, dict[str, Any]] = {}
            parent = None
            for t in range(turns):
                question, answer = f"q{c}-{t}", f"a{c}-{t}"
                model = rng.choice(MODELS)
                messages[question] = {"id": question, "parentId": parent, "childrenIds": [answer], "role": "user",
                                      "content": "a question", "timestamp": at + 60 * t, "models": [model]}
                messages[answer] = {"id": answer, "parentId": question, "childrenIds": [], "role": "assistant",
                                    "content": "an answer", "model": model, "timestamp": at + 60 * t + 5,
                                    "done": True}
                if rng.random() < 0.8:  # some answers carry no usage, as with some providers
                    messages[answer]["usage"] = {"input_tokens": rng.randrange(10, 500),
                                                 "output_tokens": rng.randrange(10, 900)}
                parent = answer
            chat = {"title": f"chat {c}", "models": [MODELS[0]],
                    "history": {"messages": messages, "currentId": parent}}
            user.post("/api/v1/chats/new", json={"chat": chat}).raise_for_status()


def period(today: date) -> tuple[int, int, list[str]]:
    """The report's `--since 30d`: whole UTC days, today included."""
    first = today - timedelta(days=SINCE_DAYS - 1)
    start = int(datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp())
    return start, start + SINCE_DAYS * DAY, [(first + timedelta(days=d)).isoformat() for d in range(SINCE_DAYS)]


def numbers(users: list[dict], chats: list[dict], today: date) -> dict[str, Any]:
    """The report's numbers from what the API returned (the report's semantics: fleet_analytics/queries.py)."""
    start, end, days = period(today)
    out: dict[str, Any] = {"users": len(users), "active_users": 0,
                           "chats": sum(start <= c["created_at"] < end for c in chats),
                           "messages": {"user": 0, "assistant": 0}, "messages_by_model": {},
                           "tokens_by_model": {}, "daily": dict.fromkeys(days, 0)}
    active = set()
    for chat in chats:
        for m in (chat["chat"].get("history") or {}).get("messages", {}).values():
            ts, role = m.get("timestamp"), m.get("role")
            if role not in ("user", "assistant") or ts is None or not start <= ts < end:
                continue
            out["messages"][role] += 1
            out["daily"][datetime.fromtimestamp(ts, UTC).date().isoformat()] += 1
            if role == "user":
                active.add(m.get("user_id") or chat["user_id"])
            elif m.get("model"):
                model = m["model"]
                out["messages_by_model"][model] = out["messages_by_model"].get(model, 0) + 1
                usage = m.get("usage") or {}
                if usage:
                    tokens = out["tokens_by_model"].setdefault(model, {"input": 0, "output": 0})
                    tokens["input"] += int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
                    tokens["output"] += int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
    out["active_users"] = len(active)
    return out


class Counted:
    """GETs through the admin's API session, counted."""

    def __init__(self, api: Api) -> None:
        self.api, self.calls = api, 0

    def get(self, path: str) -> Any:
        self.calls += 1
        r = self.api.get(path)
        r.raise_for_status()
        return r.json()


def per_chat_sync(api: Api, today: date) -> tuple[dict[str, Any], int]:
    http = Counted(api)
    users = http.get("/api/v1/users/all")["users"]
    chats = []
    for user in users:
        page = 1
        while True:
            listed = http.get(f"/api/v1/chats/list/user/{user['id']}?page={page}")
            chats += [http.get(f"/api/v1/chats/{c['id']}") for c in listed]
            if len(listed) < 60:  # the endpoint's page size
                break
            page += 1
    return numbers(users, chats, today), http.calls


def bulk_sync(api: Api, today: date) -> tuple[dict[str, Any], int]:
    http = Counted(api)
    users = http.get("/api/v1/users/all")["users"]
    return numbers(users, http.get("/api/v1/chats/all/db"), today), http.calls


def report(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-m", "fleet_analytics", "report", "--app", APP, "--since",
                             f"{SINCE_DAYS}d", "--format", "json"], env=env, cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    if result.returncode != 0:
        raise SystemExit(f"fleet_analytics report failed ({result.returncode}): {result.stderr.strip()}")
    return json.loads(result.stdout)["apps"][APP]


def timed(run: Callable[[], Any], repeat: int) -> tuple[Any, float]:
    results, seconds = None, []
    for _ in range(repeat):
        start = time.perf_counter()
        results = run()
        seconds.append(time.perf_counter() - start)
    return results, statistics.median(seconds)


def report_env(fleet: dict[str, Any]) -> dict[str, str]:
    """The analytics role's login, as the plan gives it to the report job (its generated password)."""
    ev = evaluate(STACK, read_stack_file(DEFAULT_CONFIG))
    bootstrap = dict(line.split("=", 1) for line in ev.named(f"{APP}-database", CONTAINER).inputs["envs"])
    postgres = ev.named("shared-postgres", CONTAINER).inputs["ports"][0]["external"]
    return {"PATH": os.environ["PATH"], "PGHOST": fleet["nodes"][ev.config["sharedServices"]["node"]]["address"],
            "PGPORT": str(int(postgres)), "ANALYTICS_APPS": APP,
            f"ANALYTICS_PASSWORD_{APP.upper()}": bootstrap["APP_ANALYTICS_PASSWORD"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--chats", type=int, default=8, help="per user")
    parser.add_argument("--turns", type=int, default=5, help="question/answer pairs per chat")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="rp-analytics-api-bench-"))
    try:
        fleet = Runner(state).up(DEFAULT_CONFIG)
        lb = fleet["lb"]["address"]
        admin = Api(fleet["apps"][APP]["url"], fleet["apps"][APP]["admin"]["token"], timeout=120)
        env = report_env(fleet)
        with resolving({a["hostname"]: lb for a in fleet["apps"].values()}):
            now = int(time.time())
            started = time.perf_counter()
            fill(admin, args.users, args.chats, args.turns, now)
            filled = time.perf_counter() - started
            today = datetime.now(UTC).date()
            (via_api, api_calls), api_s = timed(lambda: per_chat_sync(admin, today), args.repeat)
            (via_bulk, bulk_calls), bulk_s = timed(lambda: bulk_sync(admin, today), args.repeat)
            via_db, db_s = timed(lambda: report(env), args.repeat)
            os.environ.update(PGHOST=env["PGHOST"], PGPORT=env["PGPORT"])  # libpq's, as the report reads them
            first = today - timedelta(days=SINCE_DAYS - 1)
            password = env[App(APP).password_variable]
            _, queries_s = timed(lambda: read_app(App(APP), password, period_of(first, today), 10, False),
                                 args.repeat)
        if datetime.now(UTC).date() != today:
            raise SystemExit("the UTC day changed during the run: run it again")
        for name, got in (("per-chat API", via_api), ("bulk API", via_bulk)):
            differing = [k for k in COMPARED if got[k] != via_db[k]]
            if differing:
                raise SystemExit(f"{name} and the report differ in {differing}: "
                                 f"{ {k: (got[k], via_db[k]) for k in differing} }")
        messages = via_db["messages"]["user"] + via_db["messages"]["assistant"]
        print(f"app {APP}: {via_db['users']} users, {via_db['chats']} chats, {messages} messages "
              f"(filled through the API in {filled:.0f} s); median of {args.repeat} runs each\n")
        print("| way                                          | HTTP calls | seconds | / report process | / its queries |")
        print("|----------------------------------------------|------------|---------|------------------|---------------|")
        for name, calls, seconds in (("API, per chat (users, chat lists, each chat)", api_calls, api_s),
                                     ("API, bulk (users/all + chats/all/db)", bulk_calls, bulk_s),
                                     ("python -m fleet_analytics report (SQL)", 0, db_s),
                                     ("its queries alone, in this process", 0, queries_s)):
            print(f"| {name:44} | {calls:10} | {seconds:7.3f} | x{seconds / db_s:<15.2f} | x{seconds / queries_s:<12.1f} |")
        print(f"\nequal in every compared field ({', '.join(COMPARED)}): yes")
    finally:
        down(state)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
