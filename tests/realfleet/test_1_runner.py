"""The runner: the plan's containers as real processes on namespaced nodes, in the plan's order, unchanged."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

from plan.engine import CONTAINER, IMAGE, Evaluation, evaluate
from tests.realfleet import images, netns
from tests.realfleet.client import log_records
from tests.realfleet.runner import DEFAULT_CONFIG, STACK, Runner, down

# What the runner may add to a container's environment: the image's own ENV (paths rewritten) and the
# offline switches. Everything else must be exactly what the plan declares.
ADDED_ENV = {"PATH", "HOME", "LANG", "DATA_DIR", "OFFLINE_MODE", "HF_HUB_OFFLINE", "PYTHONUNBUFFERED",
             "BACKUP_LOCK_FILE", "BACKUP_WORK_DIR", "BACKUP_STATE_FILE"}


@pytest.fixture(scope="module")
def plan(stack_config: dict[str, Any]) -> Evaluation:
    return evaluate(STACK, stack_config)


def _plan_env(r: Any) -> dict[str, str]:
    return dict(line.split("=", 1) for line in r.inputs.get("envs", []))


def test_every_node_is_its_own_namespace_at_its_configured_address(fleet, stack_config) -> None:
    for node, spec in stack_config["nodes"].items():
        shown = subprocess.run(["ip", "-n", f"rf-{node}", "-4", "-o", "addr", "show", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        assert f"inet {spec['host']}/" in shown
        assert fleet.data["nodes"][node]["address"] == spec["host"]


def test_a_container_name_resolves_on_its_own_node_only(fleet) -> None:
    def resolves(node: str, name: str) -> bool:
        return subprocess.run(["ip", "netns", "exec", f"rf-{node}", "getent", "hosts", name],
                              capture_output=True).returncode == 0
    assert resolves("shared", "openwebui-postgres")
    assert not resolves("node-a", "openwebui-postgres")
    assert resolves("node-a", "openwebui-chat-node-a-1")
    assert not resolves("node-b", "openwebui-chat-node-a-1")


def test_every_container_runs_with_the_plans_env_and_command(fleet, plan) -> None:
    records = fleet.runner.runtime["containers"]
    declared = {r.name: r for r in plan.of_type(CONTAINER)}
    assert set(declared) <= set(records)
    for name, r in declared.items():
        env = records[name]["launch"]["env"]
        assert {k: env[k] for k in _plan_env(r)} == _plan_env(r), name
        assert set(env) - set(_plan_env(r)) <= ADDED_ENV, name
    redis = fleet.resource("openwebui-redis")
    # The rendered argv, verbatim but for the ACL file's volume (an image path).
    acl_volume = str(fleet.state / "volumes" / "openwebui-redis-acl")
    assert records[redis]["launch"]["argv"] == [a.replace("/usr/local/etc/redis", acl_volume)
                                                for a in declared[redis].inputs["command"]]
    assert "--aclfile" in records[redis]["launch"]["argv"]
    assert records["chat-database"]["launch"]["argv"][:2] == declared["chat-database"].inputs["command"][:2]


def test_the_live_nginx_conf_is_the_rendered_one_with_only_image_paths_moved(fleet, plan) -> None:
    step = next(r for r in plan.of_type(CONTAINER) if r.inputs["name"] == "openwebui-lb-config")
    rendered = next(u["content"] for u in step.inputs["uploads"] if u["file"].endswith("nginx.conf")).splitlines()
    live = (fleet.state / "volumes" / "openwebui-lb-conf" / "nginx.conf").read_text().splitlines()
    assert len(live) == len(rendered)
    changed = [(a, b) for a, b in zip(rendered, live) if a != b]
    assert changed, "the image's pid and temp paths must have moved into the state dir"
    for old, new in changed:
        directive = old.split()[0]
        assert directive == new.split()[0], (old, new)
        assert directive in ("pid", "proxy_cache_path") or directive.endswith("_temp_path"), (old, new)
        assert str(fleet.state) in new


def test_containers_start_after_the_ones_they_depend_on_are_healthy(fleet, plan) -> None:
    records = fleet.runner.runtime["containers"]
    by_urn = plan.by_urn()
    for r in plan.of_type(CONTAINER):
        for dep in (by_urn[u] for u in r.dependencies if by_urn.get(u) and by_urn[u].type == CONTAINER):
            assert records[r.name]["started_at"] >= records[dep.name]["healthy_at"], (r.name, dep.name)


def test_exactly_one_replica_per_app_ran_migrations_and_the_others_waited(fleet, stack_config) -> None:
    records = fleet.runner.runtime["containers"]
    for app, spec in stack_config["apps"].items():
        replicas = [f"{app}-{node}-{n}" for node, count in spec["replicas"].items() for n in range(1, count + 1)]
        ran = [r for r in replicas
               if any(caller.startswith("alembic.runtime.migration") and msg.startswith("Running upgrade")
                      for caller, msg in log_records(records[r]["log"]))]
        assert ran == [f"{app}-{spec['migrationNode']}-1"]
        for other in set(replicas) - set(ran):
            assert records[other]["started_at"] >= records[ran[0]]["healthy_at"]


def test_down_cleans_up_a_crashed_run_from_the_state_dir_alone(fleet) -> None:
    """A run that died after creating a node and starting a process: `down` finds both in runtime.json."""
    state = Path(tempfile.mkdtemp(prefix="realfleet-crashed-"))
    node = "crashtest"
    (state / "runtime.json").write_text(json.dumps({"nodes": {node: "198.18.0.250"}, "processes": {}}))
    netns.create_node(node, "198.18.0.250", {})
    proc = subprocess.Popen(netns.in_ns(f"rf-{node}", ["sleep", "600"]), start_new_session=True)
    runtime = json.loads((state / "runtime.json").read_text())
    runtime["processes"]["sleeper"] = proc.pid
    (state / "runtime.json").write_text(json.dumps(runtime))
    try:
        subprocess.run([sys.executable, "-m", "tests.realfleet", "down", "--state", str(state)], check=True,
                       cwd=Path(__file__).resolve().parents[2], timeout=120)
        assert proc.wait(timeout=10) == -signal.SIGTERM
        assert f"rf-{node}" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert not (netns.NETNS_ETC / f"rf-{node}").exists()
        assert subprocess.run(["ip", "link", "show", netns.host_link(node)], capture_output=True).returncode != 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        netns.delete_node(node)
        shutil.rmtree(state, ignore_errors=True)


def test_the_open_webui_that_runs_is_the_version_the_plan_pins(fleet, plan) -> None:
    pinned = {r.inputs["name"] for r in plan.of_type(IMAGE) if "open-webui" in r.inputs["name"]}
    installed = subprocess.run([str(images.openwebui_venv() / "bin" / "python"), "-c",
                                "import importlib.metadata as m; print(m.version('open-webui'))"],
                               capture_output=True, text=True, check=True).stdout.strip()
    assert pinned == {f"ghcr.io/open-webui/open-webui:v{installed}"}


def test_up_over_a_running_fleet_refuses_and_its_down_leaves_that_fleet_alone(fleet) -> None:
    state = Path(tempfile.mkdtemp(prefix="realfleet-second-"))
    try:
        with pytest.raises(RuntimeError, match="already exist"):
            Runner(state).up(DEFAULT_CONFIG)
        down(state)
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert all(f"rf-{node}" in namespaces for node in fleet.data["nodes"])
        assert fleet.runner.healthy(fleet.resource("openwebui-lb"))
    finally:
        shutil.rmtree(state, ignore_errors=True)


def test_the_analytics_role_reads_the_reports_columns_and_no_credential_after_a_first_deploy(fleet, plan) -> None:
    """A fresh fleet: the grants step ran after each migrating replica was healthy (issue 11)."""
    import psycopg
    for app in plan.config["apps"]:
        bootstrap = dict(line.split("=", 1) for line in plan.named(f"{app}-database", CONTAINER).inputs["envs"])
        port = int(plan.named("shared-postgres", CONTAINER).inputs["ports"][0]["external"])
        with psycopg.connect(host=fleet.data["nodes"]["shared"]["address"], port=port, dbname=bootstrap["APP_DB"],
                             user=bootstrap["APP_ANALYTICS_ROLE"], password=bootstrap["APP_ANALYTICS_PASSWORD"],
                             autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM \"user\"").fetchone()[0] >= 1  # the admin signed up
            conn.execute("SELECT role, model_id, created_at, usage, user_id FROM chat_message").fetchall()
            for query in ("SELECT * FROM auth", "SELECT * FROM api_key", "SELECT * FROM config",
                          "SELECT content FROM chat_message", 'SELECT settings FROM "user"'):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(query)
