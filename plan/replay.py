"""The bare-SDK floor for an evaluation: a program that registers the very same graph, literally.

`replay_body(ev)` returns a Pulumi program that declares every resource of `ev` again, in the same
order, with the same type, name, inputs (secrets as `Output.secret`), parent, provider, dependencies
and options, but none of the project's code: no config model, no topology, no rendering. Evaluating
it under the same mock engine is what the SDK itself costs for that graph (benchmarks/scale_bench.py).

`typed=True` also declares every output property of each type's provider class (as `None`), as
`docker.Container(...)` and the other generated classes do: the SDK then makes an Output per declared
property (78 for a container), a cost any program written with the provider packages pays and a bare
`CustomResource` with only its inputs does not.

`classes=True` builds every custom resource through its provider package's class, as a hand-written
program would (`pulumi_docker.Container(name, image=..., ports=[{"internal": ...}], opts=...)`): the
recorded wire-format inputs become the class's Python keyword arguments, translated once before the
evaluation with the SDK's own name metadata (`pulumi._types`), nested input types passed as dicts (the
SDK accepts them for its `...ArgsDict` types). The SDK then does for each resource what it does for the
program's: capture the caller's stack, serialize the inputs against the class's annotations, translate
outputs into the class's output types. This is the "same types" floor `benchmarks/scale_bench.py`
compares the program with.
"""
from __future__ import annotations

import functools
import importlib
import json
import typing
from collections.abc import Callable
from typing import Any

from plan.cli import exit_code, one_shot

one_shot(__name__)  # as `python -m plan` does: the cold floor runs under the same collector settings

import pulumi  # noqa: E402
from pulumi import _types  # noqa: E402  the SDK's name translation metadata

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


def replay_body(ev: Evaluation, typed: bool = False, classes: bool = False) -> Callable[[], None]:
    if classes:
        # What a hand-written program has in its source: each class and its keyword arguments.
        calls = [(r, *_class_call(r)) if r.custom else (r, None, {}) for r in ev.resources]

        def by_class() -> None:
            made: dict[str, pulumi.Resource] = {}
            for r, cls, kwargs in calls:
                if cls is None:
                    made[r.urn] = _register(r, made)
                else:
                    made[r.urn] = cls(r.name, opts=_options(r, made, skip_type_aliases=True),
                                      **{k: _value(v) for k, v in kwargs.items()})
        return by_class

    def body() -> None:
        made: dict[str, pulumi.Resource] = {}
        for r in ev.resources:
            made[r.urn] = _register(r, made, typed)
    return body


def provider_class(type_: str) -> type[pulumi.CustomResource]:
    """The provider package's class for a type token (`docker:index/container:Container`)."""
    package, module, name = type_.split(":")
    if package == "pulumi":  # pulumi:providers:docker
        package, module, name = name, "index", "Provider"
    path = _PROVIDER_PACKAGES[package] + ("" if module.startswith("index") else "." + module.split("/")[0])
    return getattr(importlib.import_module(path), name)


def _class_call(r: Registered) -> tuple[type[pulumi.CustomResource], dict[str, Any]]:
    """The class for `r` and its Python keyword arguments, from the inputs as the engine received them."""
    cls = provider_class(r.type)
    module = importlib.import_module(cls.__module__)
    # `BucketVersioningInitArgs` where `BucketVersioningArgs` names a nested type of another resource
    args = next(getattr(module, n) for n in (cls.__name__ + "Args", cls.__name__ + "InitArgs") if n in module.__all__)
    py_name = {pulumi_name: py for py, pulumi_name in _types.input_type_py_to_pulumi_names(args).items()}
    types = _types.input_type_types(args)
    provider = r.type.startswith("pulumi:providers:")
    return cls, {py_name[k]: _to_python(v, types.get(k), provider) for k, v in r.raw_inputs.items()}


def _to_python(value: Any, typ: Any, provider: bool = False) -> Any:
    """A wire-format input value as a program passes it for an argument annotated `typ`: input types as
    dicts with their Python names. A provider's class sends non-string settings as JSON (its
    `pulumi.runtime.to_json`), so for those the program's value is the decoded one."""
    if is_secret(value):
        return {**value, "value": _to_python(value["value"], typ, provider)}
    if provider and isinstance(value, str) and not _is_str(typ):
        return _to_python(json.loads(value), typ)
    input_type = _input_type_in(typ)
    if isinstance(value, list):
        return [_to_python(v, input_type) for v in value]
    if isinstance(value, dict) and input_type is not None:
        py_name = {pulumi_name: py for py, pulumi_name in _types.input_type_py_to_pulumi_names(input_type).items()}
        types = _types.input_type_types(input_type)
        return {py_name.get(k, k): _to_python(v, types.get(k)) for k, v in value.items()}
    return value


def _input_type_in(typ: Any) -> Any:
    """The `@pulumi.input_type` class an annotation like `Input[Sequence[Input[PortArgs | PortArgsDict]]]`
    names, if any."""
    if isinstance(typ, type) and _types.is_input_type(typ):
        return typ
    for arg in typing.get_args(typ):
        if (found := _input_type_in(arg)) is not None:
            return found
    return None


def _is_str(typ: Any) -> bool:
    """`str`, `Input[str]` or `Input[Optional[str]]` (unions the SDK flattens)."""
    return typ is str or str in typing.get_args(typ)


@functools.cache
def declared_properties(type_: str) -> tuple[str, ...]:
    """The properties the provider package's class for `type_` declares (its `@pulumi.getter`s)."""
    cls = provider_class(type_)
    return tuple(p.fget._pulumi_name for p in vars(cls).values()
                 if isinstance(p, property) and hasattr(p.fget, "_pulumi_name"))


def _options(r: Registered, made: dict[str, pulumi.Resource],
             skip_type_aliases: bool = False) -> pulumi.ResourceOptions:
    """`r`'s options; `skip_type_aliases` leaves out aliases by type alone, which a provider class adds
    itself (`aws.s3.Bucket` aliases `aws:s3/bucketV2:BucketV2`)."""
    aliases = [pulumi.Alias(name=a["name"] or ..., type_=a["type"] or ...) if "urn" not in a else a["urn"]
               for a in r.aliases if not (skip_type_aliases and "urn" not in a and not a["name"])]
    if any("urn" not in a and (a["parentUrn"] or a["noParent"]) for a in r.aliases):
        raise NotImplementedError(f"{r.name}: an alias with a parent is not replayed")
    return pulumi.ResourceOptions(
        parent=made.get(r.parent), depends_on=[made[u] for u in r.dependencies if u in made],
        provider=made.get(r.provider_urn), protect=r.protect or None,
        retain_on_delete=r.retain_on_delete or None, delete_before_replace=r.delete_before_replace or None,
        aliases=aliases or None)


def _register(r: Registered, made: dict[str, pulumi.Resource], typed: bool = False) -> pulumi.Resource:
    opts = _options(r, made)
    props = {k: _value(v) for k, v in r.raw_inputs.items()}
    if typed and r.custom:
        props = {**dict.fromkeys(declared_properties(r.type)), **props}
    if not r.custom:
        return _Component(r.type, r.name, props, opts)
    if r.type.startswith("pulumi:providers:"):
        return pulumi.ProviderResource(r.type.removeprefix("pulumi:providers:"), r.name, props, opts)
    return pulumi.CustomResource(r.type, r.name, props, opts)


def exporting(ev: Evaluation, body: Callable[[], None]) -> Callable[[], None]:
    """`body`, then `ev`'s stack outputs exported as they were (secret ones secret): the page it prints
    is the program's, outputs included."""
    def program() -> None:
        body()
        for name, value in ev.outputs.items():
            pulumi.export(name, pulumi.Output.secret(value) if name in ev.secret_outputs else value)
    return program


_PROVIDER_PACKAGES = {"docker": "pulumi_docker", "random": "pulumi_random", "aws": "pulumi_aws",
                      "command": "pulumi_command", "tls": "pulumi_tls"}
_PROVIDER_MODULES = {"docker": "pulumi_docker", "random": "pulumi_random", "aws": "pulumi_aws.s3",
                     "command": "pulumi_command.remote"}


def main(args: list[str]) -> int:
    """`python -m plan.replay [--typed | --classes] EVAL.json [EVAL.json]`: the cold floor for `python -m
    plan` (one dump) and `plan diff` (two): import what a hand-written program for these types would,
    replay, print. With `--typed`, that program uses the provider packages' classes: it loads each class
    it registers and declares its output properties (`replay_body(ev, typed=True)`). With `--classes`
    it builds each resource through its class (`replay_body(ev, classes=True)`), importing each
    provider module it uses."""
    from pathlib import Path

    from plan.engine import evaluate_program, evaluation_from_json
    from plan.render import render_plan
    typed, classes = "--typed" in args, "--classes" in args
    evs = [evaluation_from_json(Path(d).read_text()) for d in args if not d.startswith("--")]
    for package in sorted({r.type.split(":")[0] for r in evs[0].resources} & _PROVIDER_MODULES.keys()):
        importlib.import_module(_PROVIDER_MODULES[package])
    replayed = [evaluate_program(ev.stack, exporting(ev, replay_body(ev, typed, classes)), ev.config) for ev in evs]
    if len(replayed) == 1:
        print(render_plan(replayed[0]))
    else:
        from plan.diff import diff_evaluations, render_diff
        print(render_diff(diff_evaluations(replayed[0], replayed[1])))
    return 0


if __name__ == "__main__":
    import sys
    sys.exit(exit_code(main(sys.argv[1:])))
