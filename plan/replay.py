"""The bare-SDK floor for an evaluation: a program that registers the very same graph, literally.

`replay_body(ev)` returns a Pulumi program that declares every resource of `ev` again, in the same
order, with the same type, name, inputs (secrets as `Output.secret`), parent, provider, dependencies
and options, but none of the project's code: no config model, no topology, no rendering. Evaluating
it under the same mock engine is what the SDK itself costs for that graph (benchmarks/scale_bench.py).

`typed=True` also declares every output property of each type's provider class (as `None`), as
`docker.Container(...)` and the other generated classes do: the SDK then makes an Output per declared
property (78 for a container), a cost any program written with the provider packages pays and a bare
`CustomResource` with only its inputs does not.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

from plan.cli import exit_code, one_shot

one_shot(__name__)  # as `python -m plan` does: the cold floor runs under the same collector settings

import pulumi  # noqa: E402

from plan.engine import Evaluation, Registered, is_secret  # noqa: E402


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


def replay_body(ev: Evaluation, typed: bool = False) -> Callable[[], None]:
    def body() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in ev.resources:
            made[r.urn] = _register(r, made, typed)
    return body


@functools.cache
def declared_properties(type_: str) -> tuple[str, ...]:
    """The properties the provider package's class for `type_` declares (its `@pulumi.getter`s)."""
    package, module, name = type_.split(":")
    if package == "pulumi":  # pulumi:providers:docker
        package, module, name = name, "index", "Provider"
    path = _PROVIDER_PACKAGES[package] + ("" if module.startswith("index") else "." + module.split("/")[0])
    cls = getattr(importlib.import_module(path), name)
    return tuple(p.fget._pulumi_name for p in vars(cls).values()
                 if isinstance(p, property) and hasattr(p.fget, "_pulumi_name"))


def _register(r: Registered, made: dict[str, pulumi.Resource], typed: bool = False) -> pulumi.Resource:
    opts = pulumi.ResourceOptions(
        parent=made.get(r.parent), depends_on=[made[u] for u in r.dependencies if u in made],
        provider=made.get(r.provider_urn), protect=r.protect or None,
        retain_on_delete=r.retain_on_delete or None, delete_before_replace=r.delete_before_replace or None)
    props = {k: _value(v) for k, v in r.raw_inputs.items()}
    if typed and r.custom:
        props = {**dict.fromkeys(declared_properties(r.type)), **props}
    if not r.custom:
        return _Component(r.type, r.name, props, opts)
    if r.type.startswith("pulumi:providers:"):
        return pulumi.ProviderResource(r.type.removeprefix("pulumi:providers:"), r.name, props, opts)
    return pulumi.CustomResource(r.type, r.name, props, opts)


_PROVIDER_PACKAGES = {"docker": "pulumi_docker", "random": "pulumi_random", "aws": "pulumi_aws",
                      "command": "pulumi_command"}
_PROVIDER_MODULES = {"docker": "pulumi_docker", "random": "pulumi_random", "aws": "pulumi_aws.s3",
                     "command": "pulumi_command.remote"}


def main(args: list[str]) -> int:
    """`python -m plan.replay [--typed] EVAL.json [EVAL.json]`: the cold floor for `python -m plan` (one
    dump) and `plan diff` (two): import what a hand-written program for these types would, replay, print.
    With `--typed`, that program uses the provider packages' classes: it loads each class it registers
    and declares its output properties (`replay_body(ev, typed=True)`)."""
    from pathlib import Path

    from plan.engine import evaluate_program, evaluation_from_json
    from plan.render import render_plan
    typed = "--typed" in args
    evs = [evaluation_from_json(Path(d).read_text()) for d in args if d != "--typed"]
    for package in sorted({r.type.split(":")[0] for r in evs[0].resources} & _PROVIDER_MODULES.keys()):
        importlib.import_module(_PROVIDER_MODULES[package])
    replayed = [evaluate_program(ev.stack, replay_body(ev, typed), ev.config) for ev in evs]
    if len(replayed) == 1:
        print(render_plan(replayed[0]))
    else:
        from plan.diff import diff_evaluations, render_diff
        print(render_diff(diff_evaluations(replayed[0], replayed[1])))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(exit_code(main(sys.argv[1:])))
