"""The bare-SDK floor for an evaluation: a program that registers the very same graph, literally.

`replay_body(ev)` returns a Pulumi program that declares every resource of `ev` again, in the same
order, with the same type, name, inputs (secrets as `Output.secret`), parent, provider, dependencies
and options, but none of the project's code: no config model, no topology, no rendering. Evaluating
it under the same mock engine is what the SDK itself costs for that graph (benchmarks/scale_bench.py).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pulumi

from plan.engine import Evaluation, Registered, is_secret


def _value(value: Any) -> Any:
    if is_secret(value):
        return pulumi.Output.secret(_value(value["value"]))
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


class _Component(pulumi.ComponentResource):
    def __init__(self, type_: str, name: str, props: dict[str, Any], opts: pulumi.ResourceOptions) -> None:
        super().__init__(type_, name, props, opts)
        self.register_outputs({})


def replay_body(ev: Evaluation) -> Callable[[], None]:
    def body() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in ev.resources:
            made[r.urn] = _register(r, made)
    return body


def _register(r: Registered, made: dict[str, pulumi.Resource]) -> pulumi.Resource:
    opts = pulumi.ResourceOptions(
        parent=made.get(r.parent), depends_on=[made[u] for u in r.dependencies if u in made],
        provider=made.get(r.provider_urn), protect=r.protect or None,
        retain_on_delete=r.retain_on_delete or None, delete_before_replace=r.delete_before_replace or None)
    props = {k: _value(v) for k, v in r.raw_inputs.items()}
    if not r.custom:
        return _Component(r.type, r.name, props, opts)
    if r.type.startswith("pulumi:providers:"):
        return pulumi.ProviderResource(r.type.removeprefix("pulumi:providers:"), r.name, props, opts)
    return pulumi.CustomResource(r.type, r.name, props, opts)


_PROVIDER_MODULES = {"docker": "pulumi_docker", "random": "pulumi_random", "aws": "pulumi_aws.s3",
                     "command": "pulumi_command.remote"}


def main(dumps: list[str]) -> int:
    """`python -m plan.replay EVAL.json [EVAL.json]`: the cold floor for `python -m plan` (one dump)
    and `plan diff` (two): import what a hand-written program for these types would, replay, print."""
    import importlib
    from pathlib import Path

    from plan.engine import evaluate_program, evaluation_from_json
    from plan.render import render_plan
    evs = [evaluation_from_json(Path(d).read_text()) for d in dumps]
    for package in sorted({r.type.split(":")[0] for r in evs[0].resources} & _PROVIDER_MODULES.keys()):
        importlib.import_module(_PROVIDER_MODULES[package])
    replayed = [evaluate_program(ev.stack, replay_body(ev), ev.config) for ev in evs]
    if len(replayed) == 1:
        print(render_plan(replayed[0]))
    else:
        from plan.diff import diff_evaluations, render_diff
        print(render_diff(diff_evaluations(replayed[0], replayed[1])))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(main(sys.argv[1:]))
