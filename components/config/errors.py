"""Pydantic's validation errors as readable lines: the key, the bad value and what to write instead."""
from __future__ import annotations

import difflib
import json
import re
import types
import typing
from typing import Annotated, Any

import annotated_types
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config.types import Invalid

# One problem: the key path it is about (for sorting) and the line that says it.
Problem = tuple[str, str]


def known_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at `loc` (for naming the known keys)."""
    current: Any = model
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return current
            current = field.annotation
        current = _unwrap(current, part)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any, part: Any) -> Any:
    """Step into Optional[...] / dict[K, V] / list[V] / Annotated[...] towards a BaseModel."""
    while True:
        origin, args = typing.get_origin(annotation), typing.get_args(annotation)
        if origin is Annotated:
            annotation = args[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next((a for a in args if a is not type(None)), annotation)
        elif origin is dict and isinstance(part, str) and part != "[key]":
            return args[1]
        elif origin in (list, tuple) and isinstance(part, int):
            return args[0]
        else:
            return annotation


def _value_facts(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[list[Any], Any]:
    """The constraints (annotated_types Ge, Le, ...) and the default of the value at `loc`, where known."""
    current: Any = model
    constraints: list[Any] = []
    default: Any = None
    for part in loc:
        constraints, default = [], None
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            if field is None:
                return [], None
            current, constraints = field.annotation, list(field.metadata)
            default = None if field.default is PydanticUndefined else field.default
        else:
            current = _unwrap(current, part)
        while typing.get_origin(current) is Annotated:
            inner, *extra = typing.get_args(current)
            for item in extra:
                constraints += item.metadata if isinstance(item, FieldInfo) else [item]
            current = inner
        if typing.get_origin(current) in (typing.Union, types.UnionType):
            current = _unwrap(current, part)
    return constraints, default


def _range(constraints: list[Any]) -> tuple[str, Any]:
    """' from 1 to 100' (as far as the bounds are known) and the smallest allowed value."""
    low = next((c.ge for c in constraints if isinstance(c, annotated_types.Ge)), None)
    above = next((c.gt for c in constraints if isinstance(c, annotated_types.Gt)), None)
    high = next((c.le for c in constraints if isinstance(c, annotated_types.Le)), None)
    text = (f" from {low}" if low is not None else f" above {above}" if above is not None else "") + \
        (f" to {high}" if high is not None else "")
    return text, low


def format_errors(error: ValidationError, root: str, model: type[BaseModel],
                  prefix: tuple[str, ...] = ()) -> list[Problem]:
    """Every problem in `error`, one line each: the key, the bad value and what to write instead.

    `prefix`: where in `model` the validated value sits, when it was validated on its own (one key).
    """
    errors = [{**e, "loc": prefix + tuple(e["loc"])} for e in error.errors(include_url=False)]
    unknown = {(tuple(e["loc"][:-1]), str(e["loc"][-1])) for e in errors if e["type"] == "extra_forbidden"}
    problems = []
    for e in errors:
        # A misspelt required key is both missing and unknown: it is reported once, as the typo.
        if e["type"] == "missing" and any(parent == tuple(e["loc"][:-1]) and
                                          difflib.get_close_matches(str(e["loc"][-1]), [key], n=1)
                                          for parent, key in unknown):
            continue
        problems.append(_format_one(e, root, model))
    return problems


def format_error(error: ValidationError, root: str, model: type[BaseModel]) -> str:
    """The first problem (by key path) of `error` as one line."""
    return sorted(format_errors(error, root, model))[0][1]


def _path(root: str, loc: tuple[Any, ...]) -> str:
    parts = [root] if root else []
    parts += [str(p) if not isinstance(p, int) else f"[{p}]" for p in loc]
    return ".".join(parts).replace(".[", "[")


def _format_one(e: Any, root: str, model: type[BaseModel]) -> Problem:
    loc = tuple(p for p in e["loc"] if p != "[key]")
    path = _path(root, loc)
    cause = e.get("ctx", {}).get("error")
    if isinstance(cause, Invalid):
        key = ".".join(p for p in (path, cause.key) if p)
        return key, f"{key}: {cause}"
    path = path or "config"
    kind, shown = e["type"], e.get("input")
    leaf = str(loc[-1]) if loc and not isinstance(loc[-1], int) else path
    # pydantic names our classes ("a valid dictionary or instance of Node"); users wrote YAML.
    message = re.sub(r" or instance of \w+", "", e["msg"].removeprefix("Value error, "))
    constraints, default = _value_facts(model, loc)
    span, low = _range(constraints)
    if kind == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = known_keys(parent) if parent else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        listing = f"known keys here: {', '.join(known)}"
        fix = f"write '{close[0]}' ({listing})" if close else f"remove it, or write one of the {listing}"
        return path, f"{path}: unknown key '{loc[-1]}': {fix}"
    if kind == "missing":
        return path, f"{path}: required key is missing: add it (see the README's config reference)"
    if kind in ("value_error", "assertion_error"):
        return path, f"{path}: {message}"  # our own validators' messages end with the fix
    if kind == "int_type" and isinstance(shown, str) and shown.strip().isdigit():
        return path, f"{path}: {shown!r} is a string: write the number without quotes, e.g. {shown.strip()}"
    if kind == "string_type" and isinstance(shown, (int, float, bool)):
        return path, f"{path}: {shown!r} is not a string: quote it, e.g. '{json.dumps(shown)}'"
    example = default if isinstance(default, (int, float)) and not isinstance(default, bool) else low
    example = 1 if example is None else example
    if kind.startswith("int_"):
        return path, f"{path}: {shown!r} is not a whole number: write one{span}, e.g. {leaf}: {int(example)}"
    if kind.startswith("float_"):
        return path, f"{path}: {shown!r} is not a number: write one{span}, e.g. {leaf}: {example}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return path, f"{path}: {shown!r} is out of range: write a number{span}, e.g. {leaf}: {example}"
    if kind.startswith("bool_"):
        return path, f"{path}: {shown!r} is not true or false: write {leaf}: true or {leaf}: false"
    if kind == "literal_error":
        return path, f"{path}: {shown!r} is not allowed: write {e['ctx']['expected']}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        what = "is empty" if shown is None else f"{shown!r} is not a mapping"
        return path, (f"{path}: {what}: write its keys indented below '{leaf}:' "
                      "(see the README's config reference)")
    if kind in ("list_type", "tuple_type"):
        return path, f"{path}: {shown!r} is not a list: write [a, b], or one '- item' line per entry"
    return path, (f"{path}: {shown!r} is not valid: {message[0].lower()}{message[1:]}: "
                  "see the README's config reference for what to write")
