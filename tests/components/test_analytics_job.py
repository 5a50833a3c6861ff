"""The usage report job as each stack declares it: on the shared node, read-only logins, the bucket's keys."""
from __future__ import annotations

import copy
import json

import pytest

from components.config import ConfigError, parse_fleet
from fleet_analytics.job import JobSettings
from fleet_analytics.settings import Settings
from fleet_queries import CONTAINER, env, node_of, plaintext_leaks, replicas_of, secret_needles
from plan.engine import Evaluation, evaluate, is_secret


def test_report_job_runs_on_the_shared_node_on_its_schedule_with_a_healthcheck(stack: Evaluation) -> None:
    job = stack.named("analytics", CONTAINER)
    assert node_of(stack, job) == stack.config["sharedServices"]["node"]
    assert job.inputs["command"] == ["schedule", "--cron", stack.config["analytics"].get("schedule", "30 2 * * *")]
    assert job.inputs["healthcheck"]["tests"] == ["CMD-SHELL", "python -m fleet_analytics health"]
    assert is_secret(job.raw_inputs["envs"])
    assert plaintext_leaks(job.raw_inputs, secret_needles(stack)) == []


def test_the_job_reads_the_env_the_program_gives_it(stack: Evaluation) -> None:
    e = env(stack.named("analytics", CONTAINER))
    settings, job = Settings.from_env(e), JobSettings.from_env(e)
    assert [a.name for a in settings.apps] == sorted(stack.config["apps"])
    backup = stack.config["backup"]
    assert (job.stack, job.bucket, job.since_days) == (stack.stack, backup["bucket"], 30)
    assert job.endpoint == backup.get("jobEndpoint", backup.get("endpoint"))
    assert e["PGHOST"] == "openwebui-postgres"


def test_the_job_logs_in_as_each_apps_read_only_role_and_holds_no_admin_password(stack: Evaluation) -> None:
    e = env(stack.named("analytics", CONTAINER))
    for app in stack.config["apps"]:
        bootstrap = env(stack.named(f"{app}-database", CONTAINER))
        assert e[f"ANALYTICS_PASSWORD_{app.upper()}"] == bootstrap["APP_ANALYTICS_PASSWORD"]
        assert Settings.from_env(e).apps[sorted(stack.config["apps"]).index(app)].role == bootstrap["APP_ANALYTICS_ROLE"]
    admin = env(stack.named("chat-database", CONTAINER))["PGPASSWORD"]
    assert "PGPASSWORD" not in e and "PGUSER" not in e and admin not in e.values()


def test_prices_from_stack_config_reach_the_job() -> None:
    config = copy.deepcopy(evaluate("local").config)
    config["analytics"] = {"prices": {"gpt-4o": {"input": 2.5, "output": 10}}, "currency": "EUR", "sinceDays": 7}
    e = env(evaluate("local", config).named("analytics", CONTAINER))
    settings = Settings.from_env(e)
    assert (settings.prices["gpt-4o"].input, settings.prices["gpt-4o"].output, settings.currency) == (2.5, 10, "EUR")
    assert json.loads(e["ANALYTICS_PRICES"]) == {"gpt-4o": {"input": 2.5, "output": 10}}
    assert e["ANALYTICS_SINCE_DAYS"] == "7"


@pytest.mark.parametrize(("analytics", "message"), [
    ({"schedule": "daily"}, "analytics.schedule: 'daily' is not a 5-field cron expression"),
    ({"sinceDays": 0}, "analytics.sinceDays"),
    ({"prices": {"gpt-4o": {"input": 1}}}, "analytics.prices.gpt-4o.output"),
    ({"prices": {"gpt-4o": {"input": 1, "output": -2}}}, "analytics.prices.gpt-4o.output"),
    ({"schedul": "0 3 * * *"}, "analytics.schedul"),
])
def test_analytics_config_mistakes_name_the_key(analytics: dict, message: str) -> None:
    config = copy.deepcopy(evaluate("local").config)
    config["analytics"] = analytics
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("*", r"\*")):
        parse_fleet(config, set(), {})


def test_analytics_without_backup_is_refused() -> None:
    config = copy.deepcopy(evaluate("local").config)
    del config["backup"]
    with pytest.raises(ConfigError, match="analytics: writes its reports to the backup bucket, but backup is not set"):
        parse_fleet(config, set(), {})


BACKUP_KEYS = {"backupAccessKeyId", "backupSecretAccessKey"}


@pytest.mark.parametrize("given", [set(), {"analyticsAccessKeyId"}])
def test_on_an_external_store_the_report_job_needs_keys_of_its_own(given: set[str]) -> None:
    config = copy.deepcopy(evaluate("prod").config)
    with pytest.raises(ConfigError) as e:
        parse_fleet(config, BACKUP_KEYS | given, {})
    assert str(e.value) == (
        "analytics: needs its own keys to the backup bucket, never the backup job's: create a key on the store "
        "allowed only reports/ in bucket openwebui-fleet-backups-prod (put, get, delete; list that prefix), then "
        "pulumi config set --secret analyticsAccessKeyId ... and analyticsSecretAccessKey ...")
    parse_fleet(config, BACKUP_KEYS | {"analyticsAccessKeyId", "analyticsSecretAccessKey"}, {})


def test_a_minio_outside_the_fleet_is_an_external_store_for_the_report_job() -> None:
    """backupAccessKeyId points the jobs at another MinIO: the program's user would be on the wrong one."""
    config = copy.deepcopy(evaluate("local").config)
    with pytest.raises(ConfigError, match=r"^analytics: needs its own keys to the backup bucket"):
        parse_fleet(config, BACKUP_KEYS, {})


def test_report_keys_are_refused_where_the_program_creates_the_report_user() -> None:
    config = copy.deepcopy(evaluate("local").config)
    with pytest.raises(ConfigError, match=r"^analyticsAccessKeyId: is set, but reports go to the fleet's own MinIO"):
        parse_fleet(config, {"analyticsAccessKeyId", "analyticsSecretAccessKey"}, {})


def test_the_analytics_grants_follow_the_migrating_replica_and_log_in_as_the_app(stack: Evaluation) -> None:
    """Open WebUI creates its tables when the migrating replica starts: the grants come after it is
    healthy (it waits for health), and again whenever it is replaced (its id is in the step's labels)."""
    for app in stack.config["apps"]:
        migrator = next(c for c in replicas_of(stack, app) if env(c)["ENABLE_DB_MIGRATIONS"] == "true")
        step = stack.named(f"{app}-analytics-grants", CONTAINER)
        assert migrator.urn in step.dependencies and migrator.inputs["wait"] is True
        assert migrator.urn in step.property_dependencies["labels"]
        e = env(step)
        bootstrap = env(stack.named(f"{app}-database", CONTAINER))
        assert (e["PGUSER"], e["PGDATABASE"]) == (bootstrap["APP_ROLE"], bootstrap["APP_DB"])
        assert e["PGPASSWORD"] == bootstrap["APP_DB_PASSWORD"]  # the app's own login, never the admin's
        assert e["APP_ANALYTICS_ROLE"] == bootstrap["APP_ANALYTICS_ROLE"]
