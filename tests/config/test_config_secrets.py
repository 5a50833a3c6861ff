"""A config mistake never echoes a secret, and no input makes the config reader crash.

Each test feeds the real program (under the mock engine) one broken value and reads the one-line
error it gives, as `pulumi up` would print it.
"""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from plan.engine import Evaluation, evaluate, stack_config

SECRET = "S3CRET-do-not-print-4b1d"


def prod() -> dict[str, Any]:
    return copy.deepcopy(stack_config("prod"))


def error_of(config: dict[str, Any]) -> str:
    evaluation: Evaluation = evaluate("prod", config)
    assert evaluation.resources == []
    assert evaluation.error is not None, "the program accepted it"
    assert "Traceback" not in evaluation.error and 'File "' not in evaluation.error
    assert "\n" not in evaluation.error
    return evaluation.error


@pytest.mark.parametrize("app_secrets", [
    '{"chat": {"microsoftClientSecret": "' + SECRET + '"',          # broken JSON
    '["' + SECRET + '"',                                             # broken JSON, a list
    {"chat": SECRET},                                                # not an object
    {"chat": {"openaiApiKeys": SECRET}},                             # not a list
    {"chat": {"openaiApiKeys": [SECRET, 7]}},                        # not a string
    {"chat": {"microsoftClientSecret": [SECRET]}},                   # not a string
    {"chat": {"microsoftClientSecrett": SECRET}},                    # typo: unknown key
    [SECRET],                                                        # not an object at all
])
def test_a_malformed_app_secrets_value_is_refused_without_echoing_it(app_secrets: Any) -> None:
    config = prod()
    config["appSecrets"] = app_secrets
    error = error_of(config)
    assert error.removeprefix("openwebui-fleet:").startswith("appSecrets"), error
    assert SECRET not in error and SECRET[:12] not in error


@pytest.mark.parametrize("key", ["postgresPassword", "redisPassword", "qdrantApiKey", "lbTlsKey",
                                 "backupSecretAccessKey", "sshPrivateKey"])
def test_a_secret_that_starts_like_json_is_never_echoed(key: str) -> None:
    config = prod()
    config[key] = "{" + SECRET
    evaluation = evaluate("prod", config)
    assert SECRET not in (evaluation.error or "")
    assert SECRET[:8] not in (evaluation.error or "")


def test_a_long_broken_json_value_is_cut_in_the_message() -> None:
    config = prod()
    config["nodes"] = "{" + "x" * 5000
    error = error_of(config)
    assert error.startswith("openwebui-fleet:nodes: ")
    assert len(error) < 300


@pytest.mark.parametrize("text", [
    "[" * 100_000,                                    # deeper than Python's recursion limit
    "[" * 100_000 + "]" * 100_000,
    "[" + "9" * 10_000 + "]",                         # past int()'s digit limit
    '{"a": ' + "1" * 5000 + "}",
    "[1e999999]",                                     # inf
    '["\\ud800"]',                                    # lone surrogate
])
def test_pathological_json_is_a_clean_error_not_a_crash(text: str) -> None:
    config = prod()
    config["apps"] = text
    error = error_of(config)
    assert error.startswith(("openwebui-fleet:apps: ", "apps")), error
    assert len(error) < 400
