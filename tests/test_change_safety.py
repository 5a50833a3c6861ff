"""Each config edit does what it says and nothing else: prod evaluated before and after, diffed by URN."""
from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet_queries import replicas_of
from plan.diff import PlanDiff, diff_evaluations, render_diff, replacement_order
from plan.engine import PROJECT_DIR, Evaluation, evaluate

NEW_IMAGE = "ghcr.io/open-webui/open-webui:v0.12.5"
OLD_IMAGE_SLUG = "ghcr.io-open-webui-open-webui-v0.12.4"


def add_node(c: dict[str, Any]) -> None:
    c["nodes"]["slave2"] = {"host": "192.168.1.22"}
    c["apps"]["chat"]["replicas"]["slave2"] = 1


def remove_node(c: dict[str, Any]) -> None:
    del c["nodes"]["slave1"]
    del c["apps"]["chat"]["replicas"]["slave1"]


def raise_replicas(c: dict[str, Any]) -> None:
    c["apps"]["chat"]["replicas"]["slave1"] = 3


def add_app(c: dict[str, Any]) -> None:
    c["apps"]["docs"] = {"hostname": "docs.example.com", "port": 3200, "replicas": {"master": 1}}


def bump_chat_image(c: dict[str, Any]) -> None:
    c["apps"]["chat"]["image"] = NEW_IMAGE


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "add a node": add_node, "remove a node": remove_node, "raise replicas": raise_replicas,
    "add an app": add_app, "bump chat's image": bump_chat_image}


def edited(prod: Evaluation, edit: Callable[[dict[str, Any]], None]) -> Evaluation:
    config = copy.deepcopy(prod.config)
    edit(config)
    return evaluate("prod", config)


@pytest.fixture(scope="module")
def after(prod: Evaluation) -> dict[str, Evaluation]:
    return {name: edited(prod, edit) for name, edit in EDITS.items()}


@pytest.fixture(scope="module")
def diffs(prod: Evaluation, after: dict[str, Evaluation]) -> dict[str, PlanDiff]:
    result = {name: diff_evaluations(prod, ev, "prod", name) for name, ev in after.items()}
    for name, diff in result.items():  # the counts the lead asked for, visible with pytest -s
        print(f"{name}: {diff.counts()}")
    return result


def test_the_unedited_stack_diffs_to_nothing(prod: Evaluation) -> None:
    diff = diff_evaluations(prod, evaluate("prod"))
    assert diff.error is None and diff.changes == [] and diff.nginx_diff == ""


def test_adding_a_node_with_one_replica_creates_its_node_resources_and_rewrites_only_the_lb_config(
        diffs: dict[str, PlanDiff]) -> None:
    diff = diffs["add a node"]
    assert diff.names("create") == {"slave2", "slave2-network", f"slave2-{OLD_IMAGE_SLUG}",
                                    "chat-slave2-1", "chat-slave2-1-data"}
    assert {c.type for c in diff.of("create") if c.name == "slave2"} == {"pulumi:providers:docker"}
    assert diff.names("replace") == {"lb-config"} and diff.names("update") == set()
    assert diff.names("delete") == set()
    (lb_config,) = diff.of("replace")
    assert set(lb_config.keys) == {"uploads", "labels"}  # the nginx.conf upload and its hash label
    assert "+        server 192.168.1.22:3000" in diff.nginx_diff


def test_removing_a_node_deletes_only_its_resources_and_flags_its_protected_volumes(
        diffs: dict[str, PlanDiff]) -> None:
    diff = diffs["remove a node"]
    volumes = {"chat-slave1-1-data", "chat-slave1-2-data"}
    assert diff.names("delete") == {"slave1", "slave1-network", f"slave1-{OLD_IMAGE_SLUG}",
                                    "chat-slave1-1", "chat-slave1-2"} | volumes
    assert diff.names("replace") == {"lb-config"} and diff.names("update") == diff.names("create") == set()
    assert {c.name for c in diff.blocked} == volumes
    rendered = render_diff(diff)
    for change in diff.blocked:
        assert "protected: see Notes" in change.notes
        assert f"  pulumi state unprotect '{change.urn}'" in rendered.split("\nNotes\n", 1)[1].splitlines()
        assert change.retain_on_delete
    assert "2 protected resource(s) would be replaced or deleted" in rendered


def test_the_diff_table_stays_narrow_when_protected_volumes_go(diffs: dict[str, PlanDiff]) -> None:
    table = render_diff(diffs["remove a node"]).split("\nNotes\n", 1)[0]
    assert "urn:pulumi:" not in table  # full URNs are listed once, under Notes
    assert max(len(line) for line in table.splitlines()) <= 150


def test_raising_a_replica_count_adds_one_container_and_volume_and_rewrites_the_lb_config(
        diffs: dict[str, PlanDiff]) -> None:
    diff = diffs["raise replicas"]
    assert diff.names("create") == {"chat-slave1-3", "chat-slave1-3-data"}
    assert diff.names("replace") == {"lb-config"}
    assert diff.names("update") == diff.names("delete") == set()


def test_adding_an_app_creates_its_database_secrets_and_replicas_and_replaces_the_backup_and_report_jobs(
        diffs: dict[str, PlanDiff]) -> None:
    diff = diffs["add an app"]
    assert diff.names("create") == {"docs-database", "docs-secret-key", "docs-db-password", "docs-analytics-password",
                                    "docs-analytics-grants", "docs-master-1", "docs-master-1-data", "shared-redis-docs-password",
                                    "shared-object-storage-openwebui-docs-secret-key"}
    # Both jobs list the apps (BACKUP_APPS, ANALYTICS_APPS) and the backup job gets each app's DB password: a
    # new app restarts them (replaced); the backup role is re-applied with membership in the new app's role.
    # The app's own Redis user and MinIO user come from one-shot steps, which run again (replaced);
    # Redis itself loads the new users live and is not touched.
    assert diff.names("replace") == {"lb-config", "backup", "analytics", "backup-database-role",
                                     "shared-redis-users", "shared-object-storage-bucket"}
    assert diff.names("update") == diff.names("delete") == set()
    (backup,) = [c for c in diff.of("replace") if c.name == "backup"]
    assert backup.keys == ("envs [secret] (APP_DB_PASSWORD_DOCS, BACKUP_APPS)",)
    (analytics,) = [c for c in diff.of("replace") if c.name == "analytics"]
    assert analytics.keys == ("envs [secret] (ANALYTICS_APPS, ANALYTICS_PASSWORD_DOCS)",)
    (role,) = [c for c in diff.of("replace") if c.name == "backup-database-role"]
    assert role.keys == ("envs [secret] (APP_ROLES)",)


def test_bumping_one_apps_image_replaces_every_replica_of_it_its_grants_step_and_nothing_of_other_apps(
        diffs: dict[str, PlanDiff]) -> None:
    diff = diffs["bump chat's image"]
    replicas = {"chat-master-1", "chat-slave1-1", "chat-slave1-2"}  # Pulumi.prod.yaml's
    # The grants step's label holds the migrating replica's id: unknown until it is replaced, so replaced.
    assert diff.names("replace") == replicas | {"chat-analytics-grants"}
    assert all(c.replace_keys == ("image",) for c in diff.of("replace") if c.name in replicas)
    (grants,) = [c for c in diff.of("replace") if c.name == "chat-analytics-grants"]
    assert grants.replace_keys == ("labels",) and grants.notes[0] == "reads replaced chat-master-1"
    assert diff.names("create") == {"master-ghcr.io-open-webui-open-webui-v0.12.5",
                                    "slave1-ghcr.io-open-webui-open-webui-v0.12.5"}
    # research still runs v0.12.4 on master, so only slave1's old pull goes.
    assert diff.names("delete") == {f"slave1-{OLD_IMAGE_SLUG}"}
    assert diff.names("update") == set() and diff.nginx_diff == ""
    assert not any("research" in c.name for c in diff.changes)


def test_no_edit_replaces_or_deletes_a_protected_resource_except_the_removed_nodes_volumes(
        prod: Evaluation, diffs: dict[str, PlanDiff]) -> None:
    protected = {r.name for r in prod.resources if r.protect}
    assert {"shared-postgres-data", "backups-bucket", "chat-master-1-data"} <= protected
    for name, diff in diffs.items():
        allowed = {"chat-slave1-1-data", "chat-slave1-2-data"} if name == "remove a node" else set()
        assert {c.name for c in diff.changes if c.protect and c.action in ("replace", "delete")} == allowed, name
        assert {c.name for c in diff.blocked} == allowed, name


def test_diff_output_never_shows_a_secret_value(diffs: dict[str, PlanDiff], after: dict[str, Evaluation]) -> None:
    for name, diff in diffs.items():
        text = render_diff(diff)
        assert "MOCK-GENERATED-SECRET" not in text and "mock-secret:" not in text, name
        for value in after[name].generated_secrets:
            assert value not in text


def test_bumping_an_apps_image_in_the_local_stack_replaces_its_replicas_and_its_grants_step(local: Evaluation) -> None:
    config = copy.deepcopy(local.config)
    (app, spec), *_ = config["apps"].items()
    spec["image"] = NEW_IMAGE
    diff = diff_evaluations(local, evaluate("local", config))
    replicas = {f"{app}-{node}-{i}" for node, count in spec["replicas"].items() for i in range(1, count + 1)}
    assert diff.names("replace") == replicas | {f"{app}-analytics-grants"}
    assert diff.names("update") == set()
    assert f"{app}-analytics-grants" in render_diff(diff)


# ── Open WebUI's upgrade order ───────────────────────────────────────────────────────────────────

def _chat_upgrade(prod: Evaluation, new: Evaluation, diff: PlanDiff) -> tuple[list[tuple[str, str]], str, set[str]]:
    steps = replacement_order(prod, new, [c.urn for c in diff.of("replace")])
    migrator = next(c.name for c in replicas_of(new, "chat")
                    if "ENABLE_DB_MIGRATIONS=false" not in c.inputs["envs"])
    others = {c.name for c in replicas_of(new, "chat")} - {migrator}
    return steps, migrator, others


def test_image_bump_starts_every_other_replica_after_the_migrating_one(
        prod: Evaluation, after: dict[str, Evaluation], diffs: dict[str, PlanDiff]) -> None:
    steps, migrator, others = _chat_upgrade(prod, after["bump chat's image"], diffs["bump chat's image"])
    assert migrator == "chat-master-1" and others == {"chat-slave1-1", "chat-slave1-2"}
    start = steps.index(("create", migrator))
    assert all(steps.index(("create", o)) > start for o in others)


def test_image_bump_deletes_every_old_replica_before_the_migrating_replica_starts(
        prod: Evaluation, after: dict[str, Evaluation], diffs: dict[str, PlanDiff]) -> None:
    steps, migrator, others = _chat_upgrade(prod, after["bump chat's image"], diffs["bump chat's image"])
    start = steps.index(("create", migrator))
    assert all(steps.index(("delete", o)) < start for o in others | {migrator})


# ── the CLI ──────────────────────────────────────────────────────────────────────────────────────

def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plan", "diff", *args], cwd=PROJECT_DIR,
                          capture_output=True, text=True, timeout=120)


def test_plan_diff_cli_prints_counts_table_and_nginx_diff(prod: Evaluation, tmp_path: Path) -> None:
    config = copy.deepcopy(prod.config)
    add_app(config)
    new = tmp_path / "Pulumi.prod.yaml"
    new.write_text(yaml.safe_dump({"config": {f"openwebui-fleet:{k}": v for k, v in config.items()}}))
    result = _run("prod", "--old", str(PROJECT_DIR / "Pulumi.prod.yaml"), "--new", str(new))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "9 to create, 6 to replace, 0 to update, 0 to delete" in out
    assert "envs [secret] (APP_DB_PASSWORD_DOCS, BACKUP_APPS)" in out and "+    upstream app_docs {" in out
    assert "MOCK-GENERATED-SECRET" not in out and "mock-secret:" not in out


def test_plan_diff_cli_against_a_ref_with_a_broken_stack_file_or_a_missing_ref(tmp_path: Path) -> None:
    # An unchanged project against a ref: tests/test_plan_at_ref.py (on a throwaway repo).
    bad = tmp_path / "Pulumi.prod.yaml"
    bad.write_text((PROJECT_DIR / "Pulumi.prod.yaml").read_text().replace("slave1: 2", "slave9: 2"))
    result = _run("prod", "--against-ref", "HEAD", "--new", str(bad))
    assert result.returncode == 1
    assert "apps.chat.replicas: node 'slave9' is not under nodes" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    missing = _run("prod", "--against-ref", "no-such-ref")
    assert missing.returncode == 1 and "no-such-ref" in missing.stdout


def test_removing_the_load_balancer_shows_its_whole_nginx_conf_going(prod: Evaluation, tmp_path: Path) -> None:
    """The new side's outputs are its own: one evaluation's stack outputs never outlive it in the process."""
    config = copy.deepcopy(prod.config)
    del config["loadBalancer"]
    new = tmp_path / "Pulumi.prod.yaml"
    new.write_text(yaml.safe_dump({"config": {f"openwebui-fleet:{k}": v for k, v in config.items()}}))
    result = _run("prod", "--old", str(PROJECT_DIR / "Pulumi.prod.yaml"), "--new", str(new))
    assert result.returncode == 0, result.stderr
    assert "lb.nginxConf: unchanged" not in result.stdout
    assert "-    upstream app_chat {" in result.stdout


def test_an_evaluation_reports_only_what_its_own_program_exported(prod: Evaluation) -> None:
    from plan.engine import evaluate_program
    empty = evaluate_program("local", lambda: None, {})
    assert empty.outputs == {}
