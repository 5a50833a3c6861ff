"""The GitHub workflows: actionlint-clean, and they do what the project relies on."""
from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from realservices import require_binary

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
PLAN_DIFF = ".venv/bin/python -m plan diff prod --against-ref origin/${{ github.base_ref }}"


def load(name: str) -> dict[str, Any]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    workflow["on"] = workflow.pop(True, workflow.get("on"))  # YAML 1.1 reads a bare `on` as true
    return workflow


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return job.get("steps", [])


def run_lines(job: dict[str, Any]) -> list[str]:
    return [line.strip() for step in steps(job) for line in step.get("run", "").splitlines()]


def action(job: dict[str, Any], name: str) -> dict[str, Any]:
    [step] = [s for s in steps(job) if s.get("uses", "").startswith(f"{name}@")]
    return step


def actionlint() -> str:
    return require_binary("actionlint", installed_by="pip install -r requirements-dev.txt")


def test_actionlint_passes_on_every_workflow() -> None:
    files = sorted(WORKFLOWS.glob("*.yml"))
    assert {f.name for f in files} >= {"pull-request.yml", "deploy.yml"}
    result = subprocess.run([actionlint(), *map(str, files)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.nope( }}\n")
    result = subprocess.run([actionlint(), str(broken)], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode != 0


@pytest.mark.parametrize("name", ["pull-request.yml", "deploy.yml"])
def test_actions_are_pinned_and_permissions_minimal(name: str) -> None:
    workflow = load(name)
    assert workflow["permissions"] == {"contents": "read"}
    for job in workflow["jobs"].values():
        for permission, level in (job.get("permissions") or {}).items():
            assert level in ("read", "none") or (permission, level) == ("pull-requests", "write")
        for step in steps(job):
            if "uses" in step:
                assert re.search(r"@(v\d+(\.\d+)*|[0-9a-f]{40})$", step["uses"]), step["uses"]


def test_pull_request_runs_tests_then_plan_diff_then_preview() -> None:
    workflow = load("pull-request.yml")
    assert "pull_request" in workflow["on"]
    checks, preview = workflow["jobs"]["checks"], workflow["jobs"]["preview"]
    lines = run_lines(checks)
    install = next(line for line in lines if "apt-get install" in line)
    assert {"nginx", "postgresql", "redis-server", "openssl"} <= set(shlex.split(install))
    assert lines.index(next(line for line in lines if line.startswith("bash scripts/test.sh"))) < lines.index(PLAN_DIFF)
    assert action(checks, "actions/checkout")["with"]["fetch-depth"] == 0  # origin/<base> must exist
    assert preview["needs"] == "checks"
    assert "self-hosted" in preview["runs-on"]
    assert preview["if"] == "github.event.pull_request.head.repo.full_name == github.repository"
    pulumi = action(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview" and pulumi["with"]["stack-name"] == "prod"
    assert pulumi["with"]["comment-on-pr"] is True and pulumi["with"]["policyPacks"] == "policy"
    assert pulumi["env"]["PULUMI_ACCESS_TOKEN"] == "${{ secrets.PULUMI_ACCESS_TOKEN }}"
    assert preview["permissions"]["pull-requests"] == "write"
    assert any("secrets.FLEET_SSH_PRIVATE_KEY" in str(s.get("env")) for s in steps(preview))


def test_deploy_runs_only_on_main_behind_an_environment_one_at_a_time() -> None:
    workflow = load("deploy.yml")
    assert workflow["on"] == {"push": {"branches": ["main"]}}
    deploy = workflow["jobs"]["deploy"]
    assert deploy["environment"] == "production"
    assert deploy["concurrency"]["group"] and deploy["concurrency"]["cancel-in-progress"] is False
    assert deploy["needs"] == "checks" and "self-hosted" in deploy["runs-on"]
    pulumi = action(deploy, "pulumi/actions")
    assert pulumi["with"]["command"] == "up" and pulumi["with"]["stack-name"] == "prod"
    assert pulumi["with"]["policyPacks"] == "policy"
    assert any(line.startswith("bash scripts/test.sh") for line in run_lines(workflow["jobs"]["checks"]))
