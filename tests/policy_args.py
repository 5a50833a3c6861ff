"""Real pulumi-policy argument objects built from a mock-engine Evaluation, for calling policies in tests.

Two views of a resource's inputs:
- keep_secrets=True: secrets stay marked, as `pulumi_policy.Secret` (what the engine sends over gRPC;
  pulumi-policy itself only keeps them for remediations). The secret-env rule needs this view.
- keep_secrets=False: exactly what a validation gets under `pulumi preview --policy-pack`: pulumi-policy's
  own deserializer with the markers stripped, wrapped in its unknown-checking proxy.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyProviderResource,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    Secret,
    StackValidationArgs,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import unknown_checking_proxy

from plan.engine import Evaluation, Registered, is_secret

Violation = tuple[str, "str | None"]


def _marked(value: Any) -> Any:
    """Engine-wrapped secrets as pulumi_policy.Secret, everything else as is."""
    if is_secret(value):
        return Secret(_marked(value["value"]))
    if isinstance(value, dict):
        return {k: _marked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_marked(v) for v in value]
    return value


def props_view(raw: dict[str, Any], keep_secrets: bool = True) -> Any:
    if keep_secrets:
        return unknown_checking_proxy(_marked(raw))
    return unknown_checking_proxy(deserialize_properties(raw))  # as pulumi_policy/policy.py Analyze does


def _options(r: Registered) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect=r.protect, ignore_changes=[], delete_before_replace=r.delete_before_replace,
                                 aliases=[], custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
                                 additional_secret_outputs=[], parent=r.parent or None)


def _provider(ev: Evaluation, r: Registered, keep_secrets: bool) -> PolicyProviderResource | None:
    provider = ev.by_urn().get(r.provider_urn)
    if provider is None:
        return None
    return PolicyProviderResource(provider.type, props_view(provider.raw_inputs, keep_secrets),
                                  provider.urn, provider.name)


def resource_args(ev: Evaluation, r: Registered, keep_secrets: bool = True) -> ResourceValidationArgs:
    return ResourceValidationArgs(r.type, props_view(r.raw_inputs, keep_secrets), r.urn, r.name, _options(r),
                                  _provider(ev, r, keep_secrets))


def stack_args(ev: Evaluation, keep_secrets: bool = False) -> StackValidationArgs:
    """All resources, parents and dependencies linked as pulumi-policy's AnalyzeStack links them.

    The mock engine keeps each resource's dependencies but not which property they came from, so
    property_dependencies stays empty and policies fall back to `dependencies`.
    """
    resources = {r.urn: PolicyResource(r.type, props_view(r.raw_inputs, keep_secrets), r.urn, r.name, _options(r),
                                       _provider(ev, r, keep_secrets), None, [], {})
                 for r in ev.resources}
    for r in ev.resources:
        resources[r.urn].parent = resources.get(r.parent)
        resources[r.urn].dependencies = [resources[d] for d in r.dependencies if d in resources]
    return StackValidationArgs(list(resources.values()))


# Hand-built resources for the cases the fleet must never produce.

def fake_args(type_: str, props: dict[str, Any], name: str = "bad") -> ResourceValidationArgs:
    urn = f"urn:pulumi:test::openwebui-fleet::{type_}::{name}"
    return ResourceValidationArgs(type_, props_view(props), urn, name,
                                  PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []), None)


def fake_resource(type_: str, name: str, props: dict[str, Any] | None = None, *,
                  provider: PolicyProviderResource | None = None, parent: PolicyResource | None = None,
                  depends_on: list[PolicyResource] | None = None) -> PolicyResource:
    urn = f"urn:pulumi:test::openwebui-fleet::{type_}::{name}"
    return PolicyResource(type_, props_view(props or {}), urn, name,
                          PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), []),
                          provider, parent, list(depends_on or []), {})


def run(validate: Callable[[Any, Any], Any], args: Any) -> list[Violation]:
    found: list[Violation] = []
    validate(args, lambda message, urn=None: found.append((message, urn)))
    return found
