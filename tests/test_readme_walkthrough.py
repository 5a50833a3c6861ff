"""The README's commands, run as a newcomer runs them: its first two on a fresh clone (no .venv yet), and
its "Add a node" walkthrough exactly as written (YAML snippet, diff command, resources it lists)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from plan.engine import PROJECT_DIR
from project_copy import committed_copy

README = (PROJECT_DIR / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"\n{title}\n", 1)[1].split("\n#", 1)[0]


def _blocks(text: str, lang: str) -> list[str]:
    return [re.sub(r"^ {0,3}", "", b, flags=re.M)
            for b in re.findall(rf"^\s*```{lang}\n(.*?)^\s*```", text, re.M | re.S)]


def _commands(block: str) -> list[str]:
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def test_the_first_two_commands_work_on_a_fresh_clone(tmp_path: Path) -> None:
    plan_command, test_command = _commands(_blocks(README, "bash")[0])
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(committed_copy(tmp_path / "origin")), str(clone)], check=True)
    assert not (clone / ".venv").exists()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}

    plan = subprocess.run(["bash", "-c", plan_command], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=600)
    assert plan.returncode == 0, plan.stderr[-3000:]
    assert "Plan for stack 'local'" in plan.stdout and "http://chat.localhost:8080" in plan.stdout
    assert (clone / ".venv" / "bin" / "python").exists()

    # The test command as written, on a small subset so it stays bounded (the install is the point).
    tests = subprocess.run(["bash", "-c", f"{test_command} -q -p no:cacheprovider tests/test_readme.py"],
                           cwd=clone, env=env, capture_output=True, text=True, timeout=900)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", tests.stdout) and "failed" not in tests.stdout


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    """The README's "add these lines, the other keys stay as they are"."""
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def test_the_add_a_node_walkthrough_shows_exactly_the_resources_it_lists(tmp_path: Path) -> None:
    section = _section("### Add a node")
    (snippet,) = _blocks(section, "yaml")
    command = next(c for block in _blocks(section, "bash") for c in _commands(block) if " plan diff " in c)
    listed = {(row[0], name) for row in re.findall(r"^\s*\| (create|replace|update|delete) \| (.*) \|$",
                                                  section, re.M)
              for name in re.findall(r"`([^`]+)`", re.sub(r"\([^)]*\)", "", row[1]))}  # not the (remarks)

    repo = committed_copy(tmp_path / "project")
    os.symlink(sys.prefix, repo / ".venv")  # the README's .venv/bin/python, set up as scripts/setup.sh does
    stack_file = repo / "Pulumi.prod.yaml"
    stack = yaml.safe_load(stack_file.read_text())
    _merge(stack, yaml.safe_load(snippet))
    stack_file.write_text(yaml.safe_dump(stack, sort_keys=False))

    result = subprocess.run(["bash", "-c", command], cwd=repo, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    shown = {(fields[0], fields[2]) for fields in map(str.split, result.stdout.splitlines())
             if fields and fields[0] in ("create", "replace", "update", "delete")}
    assert len(listed) == 6
    assert shown == listed
