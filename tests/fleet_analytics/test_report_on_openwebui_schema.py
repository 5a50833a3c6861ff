"""The report command on databases built by Open WebUI's own migrations and filled through its tables."""
from __future__ import annotations

import csv
import io
import json
from datetime import date

import psycopg
import pytest
from conftest import Fleet, run_report
from expected_usage import expected

from fleet_analytics.queries import SUPPORTED_REVISIONS
from openwebui_schema import (CONTENT_MARKER, create_app_database, generate, grant_analytics, load,
                             openwebui_python)

pytestmark = pytest.mark.openwebui

PERIOD = ["--from", "2026-10-05", "--to", "2026-10-14"]
FIRST, LAST = date(2026, 10, 5), date(2026, 10, 14)


def report_json(fleet: Fleet, *args: str, apps: list[str] | None = None) -> dict:
    result = run_report(fleet, *PERIOD, "--format", "json", *args, apps=apps)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_migrations_of_the_pinned_open_webui_end_at_a_supported_revision(fleet: Fleet) -> None:
    for db in fleet.dbs.values():
        with db.connect_as_app() as conn:
            assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [("0bd252b206fb",)]
    assert "0bd252b206fb" in SUPPORTED_REVISIONS


def test_json_report_equals_the_rows_in_open_webuis_tables(fleet: Fleet) -> None:
    report = report_json(fleet, "--top", "5")
    assert report["schema"] == "fleet-analytics/1"
    assert report["period"] == {"from": "2026-10-05", "to": "2026-10-14", "days": 10}
    assert sorted(report["apps"]) == ["chat", "research-lab"]
    for app, section in report["apps"].items():
        want = expected(fleet.data[app], FIRST, LAST, top=5)
        assert section["messages"]["user"] > 0 and section["tokens_by_model"], "the period holds real usage"
        assert section["alembic_revision"] == "0bd252b206fb"
        assert {k: section[k] for k in want} == want


def test_all_sums_the_apps(fleet: Fleet) -> None:
    report = report_json(fleet, "--top", "3")
    wants = [expected(fleet.data[app], FIRST, LAST, top=3) for app in ("chat", "research-lab")]
    total = report["all"]
    for key in ("users", "active_users", "chats"):
        assert total[key] == sum(w[key] for w in wants)
    assert total["messages"] == {r: sum(w["messages"][r] for w in wants) for r in ("user", "assistant")}
    models = {m for w in wants for m in w["messages_by_model"]}
    assert total["messages_by_model"] == {m: sum(w["messages_by_model"].get(m, 0) for w in wants) for m in models}
    assert total["tokens_by_model"]["gpt-4o"]["input"] == sum(w["tokens_by_model"]["gpt-4o"]["input"] for w in wants)
    assert total["daily"] == {d: sum(w["daily"][d] for w in wants) for d in wants[0]["daily"]}
    assert total["files"]["bytes"] == sum(w["files"]["bytes"] for w in wants)
    top = sorted(({"app": a, **u} for a, w in zip(("chat", "research-lab"), wants) for u in w["top_users"]),
                 key=lambda u: (-u["messages"], u["app"], u["user_id"]))[:3]
    assert total["top_users"] == top


def test_one_app_with_app_flag_and_prices_give_costs(fleet: Fleet) -> None:
    prices = {"gpt-4o": {"input": 2.5, "output": 10}, "mistral-small": {"input": 0.2, "output": 0.6}}
    result = run_report(fleet, *PERIOD, "--app", "chat", apps=["chat", "research-lab"],
                        extra_env={"ANALYTICS_PRICES": json.dumps(prices), "ANALYTICS_CURRENCY": "EUR"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert list(report["apps"]) == ["chat"] and report["currency"] == "EUR"
    tokens = expected(fleet.data["chat"], FIRST, LAST, top=0)["tokens_by_model"]
    want = {m: round((tokens[m]["input"] * p["input"] + tokens[m]["output"] * p["output"]) / 1e6, 6)
            for m, p in prices.items()}
    assert report["apps"]["chat"]["cost_by_model"] == want
    assert report["apps"]["chat"]["cost"] == pytest.approx(sum(want.values()))


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_no_message_content_and_no_emails_unless_asked(fleet: Fleet, fmt: str) -> None:
    plain = run_report(fleet, *PERIOD, "--format", fmt)
    assert plain.returncode == 0, plain.stderr
    assert CONTENT_MARKER not in plain.stdout and "@" not in plain.stdout.replace("@media", "")
    with_emails = run_report(fleet, *PERIOD, "--format", fmt, "--emails")
    assert CONTENT_MARKER not in with_emails.stdout
    top = json.loads(run_report(fleet, *PERIOD, "--emails").stdout)["apps"]["chat"]["top_users"][0]
    assert top["email"] == f"user{top['user_id'].rsplit('-u', 1)[1]}@chat.example"
    assert top["email"] in with_emails.stdout


def test_csv_holds_the_json_numbers(fleet: Fleet) -> None:
    report = report_json(fleet)
    rows = list(csv.DictReader(io.StringIO(run_report(fleet, *PERIOD, "--format", "csv").stdout)))
    value = {(r["app"], r["metric"], r["key"], r["field"]): r["value"] for r in rows}
    for app, s in [*report["apps"].items(), ("all", report["all"])]:
        assert value[app, "messages", "assistant", ""] == str(s["messages"]["assistant"])
        assert value[app, "active_users", "", ""] == str(s["active_users"])
        for day, n in s["daily"].items():
            assert value[app, "daily", day, ""] == str(n)
        for model, t in s["tokens_by_model"].items():
            assert value[app, "tokens_by_model", model, "output"] == str(t["output"])


def test_an_unknown_alembic_revision_is_refused_naming_it(fleet: Fleet, tmp_path) -> None:
    db = create_app_database(fleet.pg, "future", openwebui_python(), tmp_path)
    load(db, generate("future", 50, 1_790_000_000, 10, 3))
    with db.connect_as_app() as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'a1b2c3newer0'")
    result = run_report(fleet.__class__(fleet.pg, {**fleet.dbs, "future": db}, fleet.data), *PERIOD,
                        apps=["chat", "future"])
    assert result.returncode == 4 and result.stdout == ""
    assert "app future" in result.stderr and "'a1b2c3newer0'" in result.stderr
    assert "0bd252b206fb (Open WebUI 0.12.4)" in result.stderr


CREDENTIAL_TABLES = ("auth", "api_key", "oauth_session", "config", "channel_webhook", "tool", "function")


def test_a_first_deploy_never_lets_the_analytics_role_read_credentials(fleet: Fleet, tmp_path) -> None:
    """A fresh database: the bootstrap, then Open WebUI's migrations (they create the tables), then the
    analytics-grants step that follows the migrating replica."""
    db = create_app_database(fleet.pg, "first", openwebui_python(), tmp_path, grants=False)

    def readable() -> dict[str, bool]:
        with psycopg.connect(host=fleet.pg.host, port=fleet.pg.port, dbname=db.database,
                             user="openwebui_first_analytics", password=db.analytics_password) as conn:
            return dict(conn.execute(
                "SELECT tablename::text, has_any_column_privilege(format('public.%I', tablename), 'SELECT') "
                "FROM pg_tables WHERE schemaname = 'public'").fetchall())
    before = readable()
    assert set(CREDENTIAL_TABLES) <= set(before) and "chat_message" in before  # the migrations made them
    assert [t for t, can in before.items() if can] == []
    grant_analytics(db, tmp_path)
    after = readable()
    assert sorted(t for t, can in after.items() if can) == [
        "alembic_version", "chat", "chat_message", "file", "knowledge", "user"]
    with psycopg.connect(host=fleet.pg.host, port=fleet.pg.port, dbname=db.database,
                         user="openwebui_first_analytics", password=db.analytics_password) as conn:
        for query in ["SELECT content FROM chat_message", "SELECT chat FROM chat", 'SELECT settings FROM "user"',
                      *(f"SELECT * FROM {table}" for table in CREDENTIAL_TABLES)]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(query)
            conn.rollback()
