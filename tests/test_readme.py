"""The README a person deploys from: its config reference covers every key the model accepts."""
from __future__ import annotations

import argparse
import re
import typing

import yaml
from pydantic import BaseModel

from components.config import SECRET_KEYS, Fleet
from fleet_backup.cli import _parser as backup_parser
from plan.engine import PROJECT_DIR

PLACEHOLDERS = {"nodes": "<node>", "apps": "<app>", "replicas": None, "env": None}


def config_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    """Every leaf key a user can write, e.g. `apps.<app>.microsoftOAuth.clientId`."""
    keys: set[str] = set()
    for name, field in model.model_fields.items():
        key = prefix + (field.alias or name)
        nested = _models_in(field.annotation)
        container = typing.get_origin(_strip_optional(field.annotation))
        if container is dict and nested and PLACEHOLDERS.get(name):
            keys |= config_keys(nested[0], f"{key}.{PLACEHOLDERS[name]}.")
        elif container in (list, tuple) and nested:
            keys |= config_keys(nested[0], f"{key}[].")
        elif nested:
            keys |= config_keys(nested[0], f"{key}.")
        else:
            keys.add(key)
    return keys


def _strip_optional(annotation: typing.Any) -> typing.Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType) else annotation


def _models_in(annotation: typing.Any) -> list[type[BaseModel]]:
    found = []
    for arg in (annotation, *typing.get_args(annotation)):
        for inner in (arg, *typing.get_args(arg)):
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found.append(inner)
    return found


def test_readme_config_reference_lists_every_key_the_model_accepts() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.M))
    keys = config_keys(Fleet)
    assert {"apps.<app>.replicas", "backup.retention[].days", "nodes.<node>.host"} <= keys
    assert sorted(keys - documented) == []


def test_readme_names_every_secret_key() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    assert [k for k in SECRET_KEYS if f"`{k}`" not in readme] == []


def test_readme_starts_with_the_two_commands_that_work_on_a_fresh_machine() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["bash scripts/plan.sh local", "bash scripts/test.sh"]
    for command in commands:
        assert (PROJECT_DIR / command.split()[1]).exists()


def _code_lines(text: str) -> list[str]:
    """Every line inside a fenced code block, comments kept."""
    blocks = re.findall(r"^\s*```[a-z]*\n(.*?)^\s*```", text, re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines()]


def test_every_plan_command_in_the_readme_runs_the_projects_virtualenv() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    plan_lines = [line for line in _code_lines(readme) if re.match(r"\S*python3?\s+-m plan\b", line)]
    assert plan_lines
    assert [line for line in plan_lines if not line.startswith(".venv/bin/python -m plan ")] == []
    prose = re.findall(r"`([^`]*-m plan[^`]*)`", re.sub(r"```.*?```", "", readme, flags=re.S))
    assert [p for p in prose if p.startswith("python -m plan ")] == []


def test_readme_gives_the_local_apps_url_the_local_stack_exports(local) -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    url = local.outputs["apps"]["chat"]["url"]
    assert f"**{url}**" in readme
    assert "444" in readme and "localhost:8080` gets no answer" in readme


def test_readme_says_how_to_replace_every_placeholder_secret_in_the_prod_stack_file() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    prod = yaml.safe_load((PROJECT_DIR / "Pulumi.prod.yaml").read_text())["config"]
    secure = [k.split(":", 1)[1] for k, v in prod.items() if isinstance(v, dict) and set(v) == {"secure"}]
    assert secure
    commands = _code_lines(readme)
    assert [k for k in secure if f"pulumi config set --secret {k} -s prod" not in commands] == []


def test_readme_shows_every_backup_command_and_restore_option() -> None:
    readme = (PROJECT_DIR / "README.md").read_text()
    commands = [line for line in _code_lines(readme) if line.startswith("python -m fleet_backup ")]
    subparsers = next(a for a in backup_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for name, parser in subparsers.choices.items():
        used = [line for line in commands if line.split()[3] == name]
        assert used, f"fleet_backup {name} is not in the README"
        options = [o for a in parser._actions for o in a.option_strings if o.startswith("--") and o != "--help"]
        assert [o for o in options if not any(o in line.split() for line in used)
                and f"`{o}`" not in readme] == [], name


def test_benchmark_commands_run_from_the_repository_with_its_virtualenv() -> None:
    text = (PROJECT_DIR / "benchmarks" / "README.md").read_text()
    runs = [line for line in _code_lines(text) if "benchmarks/" in line]
    assert len(runs) == len(list((PROJECT_DIR / "benchmarks").glob("*_bench.py")))
    for line in runs:
        python, script = line.split()[:2]
        assert python == ".venv/bin/python", line
        assert (PROJECT_DIR / script).is_file(), line
