"""No secret in any process's argv, any file the program writes, or what `python -m plan` prints.

The mock engine marks every generated secret (`MOCK-GENERATED-SECRET-<name>`) and every config
secret (`mock-secret:<key>`); these tests grep for those marks after unwrapping Pulumi's secret
wrappers, because a secret Output still becomes plaintext argv or file content on the node.
A container's `sh -c` script holds no secret itself, but expands one into argv when it passes a
secret variable to anything but a shell builtin, so the scripts are checked for that too.
"""
from __future__ import annotations

import base64
import copy
import re
import subprocess
import sys
from typing import Any

import pytest

from fleet_queries import secret_needles
from plan.engine import CONTAINER, PROJECT_DIR, Evaluation, Registered, evaluate, stack_config

# Builtins of sh (dash, busybox): their arguments are never another process's argv.
_BUILTINS = {"printf", "echo", "export", "test", "["}


def with_every_secret(stack: str) -> dict[str, Any]:
    """The stack with its optional secrets set too, so their paths are covered."""
    config = copy.deepcopy(stack_config(stack))
    config["apps"]["chat"]["microsoftOAuth"] = {"clientId": "client-1", "tenantId": "tenant-1"}
    config["apps"]["chat"]["openaiApiBaseUrls"] = ["https://api.example.com/v1"]
    config["appSecrets"] = {"chat": {"microsoftClientSecret": {"secure": "v1:A"},
                                     "openaiApiKeys": [{"secure": "v1:B"}]}}
    config["redisPassword"] = {"secure": "v1:C"}
    return config


@pytest.fixture(scope="module", params=["local", "prod"])
def evaluation(request: pytest.FixtureRequest) -> Evaluation:
    ev = evaluate(request.param, with_every_secret(request.param))
    assert ev.error is None, ev.error
    return ev


def secret_env_names(container: Registered, needles: list[str]) -> set[str]:
    """Variables whose value holds a secret (Pulumi wraps the whole list, so look at the values)."""
    return {line.split("=", 1)[0] for line in container.inputs.get("envs") or []
            if any(n in line.split("=", 1)[1] for n in needles)}


def argv_expansions(script: str, secret_names: set[str]) -> list[str]:
    """Simple commands of `script` that pass a secret variable to a program (not a builtin)."""
    found = []
    for command in re.split(r"\|\||&&|[|;\n]|\$\(", script):
        words = command.split()
        if not words or words[0] in _BUILTINS or re.fullmatch(r"\w+=.*", words[0]):
            continue
        if any(re.search(rf"\$\{{?{name}\b", command) for name in secret_names):
            found.append(command.strip())
    return found


def test_no_container_argv_holds_or_expands_a_secret(evaluation: Evaluation) -> None:
    needles = secret_needles(evaluation)
    for container in evaluation.of_type(CONTAINER):
        inputs = container.inputs
        argv = [*(inputs.get("entrypoints") or []), *(inputs.get("command") or [])]
        health = (inputs.get("healthcheck") or {}).get("tests") or []
        for arg in argv + health:
            assert not any(n in arg for n in needles), (container.name, arg)
        scripts = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "-c"] + health[1:]
        names = secret_env_names(container, needles)
        assert argv_expansions("\n".join(scripts), names) == [], container.name


def test_no_uploaded_file_holds_a_secret(evaluation: Evaluation) -> None:
    needles = secret_needles(evaluation)
    allowed = {"lb-config", "lb"}  # the LB's TLS key from lbTlsKey is a file by nature (docker mode)
    for container in evaluation.of_type(CONTAINER):
        for upload in container.inputs.get("uploads") or []:
            content = upload.get("content") or base64.b64decode(upload.get("contentBase64") or "").decode()
            if container.name not in allowed:
                assert not any(n in content for n in needles), (container.name, upload.get("file"))


def test_the_argv_check_catches_a_secret_passed_to_a_program() -> None:
    secret = {"REDIS_PASSWORD", "APP_DB_PASSWORD", "ROOT"}
    assert argv_expansions('exec redis-server --requirepass "$REDIS_PASSWORD" --x y', secret)
    assert argv_expansions('psql -v password="${APP_DB_PASSWORD}" -f x', secret)
    assert argv_expansions('mc alias set fleet http://x "$ROOT" >/dev/null && mc mb x', secret)
    assert not argv_expansions('printf "%s\\n" "$ROOT" | mc admin user add fleet', secret)
    assert not argv_expansions('exec psql -X -f /bootstrap/x.sql', secret)


@pytest.mark.parametrize("stack", ["local", "prod"])
def test_plan_prints_no_secret(stack: str) -> None:
    result = subprocess.run([sys.executable, "-m", "plan", stack], cwd=PROJECT_DIR, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ev = evaluate(stack)
    for needle in secret_needles(ev):
        assert needle not in result.stdout + result.stderr
