"""Questions the tests ask of an Evaluation: replicas of an app, env of a container, and so on."""
from __future__ import annotations

from typing import Any

from plan.engine import (CONTAINER, DOCKER_PROVIDER, GENERATED_PREFIX, IMAGE, VOLUME,  # noqa: F401
                         Evaluation, Registered, is_secret)

PROVIDER = DOCKER_PROVIDER


def labels(resource: Registered) -> dict[str, str]:
    return {item["label"]: item["value"] for item in resource.inputs.get("labels", [])}


def replicas_of(ev: Evaluation, app: str) -> list[Registered]:
    return [c for c in ev.of_type(CONTAINER) if labels(c).get("openwebui-fleet.app") == app]


def env(resource: Registered) -> dict[str, str]:
    return dict(line.split("=", 1) for line in resource.inputs.get("envs", []))


def node_of(ev: Evaluation, resource: Registered) -> str:
    """The node whose Docker provider manages `resource`."""
    provider = ev.by_urn()[resource.provider_urn]
    return provider.name


def plaintext_leaks(value: Any, needles: list[str], path: str = "") -> list[str]:
    """Paths where one of `needles` appears outside a secret wrapper."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [leak for k, v in value.items() for leak in plaintext_leaks(v, needles, f"{path}.{k}")]
    if isinstance(value, list):
        return [leak for i, v in enumerate(value) for leak in plaintext_leaks(v, needles, f"{path}[{i}]")]
    if isinstance(value, str) and any(n in value for n in needles):
        return [path]
    return []


def secret_needles(ev: Evaluation) -> list[str]:
    """Every secret value the evaluation saw: generated ones and the stack's placeholders."""
    needles = list(ev.generated_secrets) + ["mock-secret:"]
    assert all(n.startswith(GENERATED_PREFIX) for n in ev.generated_secrets)
    return needles
