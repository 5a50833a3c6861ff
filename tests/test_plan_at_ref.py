"""`plan diff --against-ref` compares the project as it was at the ref (program and stack file) with the
work tree's; an aliased rename is no change."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pulumi
import pulumi_random as random
import pytest
import yaml

from plan.diff import diff_evaluations
from plan.engine import GENERATED_PREFIX, evaluate_program
from project_copy import committed_copy, git

ENV_ANCHOR = '"UVICORN_WORKERS": "1",'
_git = git


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A git repo holding the work tree's tracked files as they are now (committed or not)."""
    return committed_copy(tmp_path_factory.mktemp("at-ref") / "project")


def _diff(repo: Path, stack: str, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "plan", "diff", stack, "--against-ref", ref], cwd=repo,
                          capture_output=True, text=True, timeout=180)


def _commit(repo: Path, message: str) -> None:
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-a", "--allow-empty", "-m", message)


def test_a_commit_that_changes_nothing_diffs_empty(repo: Path) -> None:
    (repo / "README.md").write_text((repo / "README.md").read_text() + "\nA line of prose.\n")
    _commit(repo, "prose only")
    result = _diff(repo, "local", "HEAD~1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 to create, 0 to replace, 0 to update, 0 to delete" in result.stdout


def test_a_commit_that_changes_only_code_shows_every_replica_it_touches(repo: Path) -> None:
    renderer = repo / "components/render/openwebui_env.py"
    source = renderer.read_text()
    assert ENV_ANCHOR in source, "the test's anchor line moved: point ENV_ANCHOR at another env entry"
    renderer.write_text(source.replace(ENV_ANCHOR, ENV_ANCHOR + ' "AUDIT_MARKER": "1",'))
    _commit(repo, "one env var for every replica")
    stack = yaml.safe_load((repo / "Pulumi.local.yaml").read_text())["config"]
    replicas = {f"{app}-{node}-{n}" for app, spec in stack["openwebui-fleet:apps"].items()
                for node, count in spec["replicas"].items() for n in range(1, count + 1)}
    result = _diff(repo, "local", "HEAD~1")
    assert result.returncode == 0, result.stdout + result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    touched = {row[2] for row in rows if len(row) > 3 and row[0] in ("replace", "update")}
    # chat-local-1, chat-local-2 (the stack file did not change), and each app's grants step: its label
    # holds the migrating replica's id.
    assert touched == replicas | {f"{app}-analytics-grants" for app in stack["openwebui-fleet:apps"]}
    assert "AUDIT_MARKER" in result.stdout


def test_a_ref_without_the_stack_file_is_one_clean_line(repo: Path) -> None:
    result = _diff(repo, "staging", "HEAD")
    assert result.returncode == 1
    assert "Pulumi.staging.yaml" in result.stdout and "Traceback" not in result.stdout + result.stderr


# --- aliases ---------------------------------------------------------------------------------------

class Box(pulumi.ComponentResource):
    def __init__(self, name: str, child: str, opts: pulumi.ResourceOptions | None = None,
                 child_aliases: list[pulumi.Alias] | None = None, type_: str = "test:index:Box") -> None:
        super().__init__(type_, name, None, opts)
        random.RandomString(child, length=8, opts=pulumi.ResourceOptions(parent=self, aliases=child_aliases))
        self.register_outputs({})


def _evaluate(body):
    return evaluate_program("local", body)


def test_a_rename_with_an_alias_is_no_change_and_without_one_is_create_and_delete() -> None:
    old = _evaluate(lambda: Box("box", "secret-a"))
    aliased = _evaluate(lambda: Box("box", "secret-b", child_aliases=[pulumi.Alias(name="secret-a")]))
    bare = _evaluate(lambda: Box("box", "secret-b"))
    assert diff_evaluations(old, aliased).counts() == {"create": 0, "replace": 0, "update": 0, "delete": 0}
    assert diff_evaluations(old, bare).counts() == {"create": 1, "replace": 0, "update": 0, "delete": 1}


def test_a_generated_secret_keeps_its_value_across_an_aliased_rename() -> None:
    # The engine carries the state over to the new name: the same password, not a new one.
    old = _evaluate(lambda: Box("box", "secret-a"))
    aliased = _evaluate(lambda: Box("box", "secret-b", child_aliases=[pulumi.Alias(name="secret-a")]))
    assert old.generated_secrets == aliased.generated_secrets == [f"{GENERATED_PREFIX}secret-a"]


def test_children_of_a_component_whose_type_changed_under_an_alias_keep_their_identity() -> None:
    # A child's URN carries its parent's type: the engine gives children their parent's aliases.
    old = _evaluate(lambda: Box("box", "secret-a"))
    retyped = _evaluate(lambda: Box("box", "secret-a", pulumi.ResourceOptions(
        aliases=[pulumi.Alias(type_="test:index:Box")]), type_="test:index:Crate"))
    bare = _evaluate(lambda: Box("box", "secret-a", type_="test:index:Crate"))
    assert diff_evaluations(old, retyped).counts() == {"create": 0, "replace": 0, "update": 0, "delete": 0}
    assert diff_evaluations(old, bare).counts() == {"create": 1, "replace": 0, "update": 0, "delete": 1}
