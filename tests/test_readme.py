"""The README a person deploys from: its config reference covers every key the model accepts."""
from __future__ import annotations

import re
import typing

from pydantic import BaseModel

from components.config import SECRET_KEYS, Fleet
from plan.engine import PROJECT_DIR

PLACEHOLDERS = {"nodes": "<node>", "apps": "<app>", "prices": "<model>", "replicas": None, "env": None}


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
