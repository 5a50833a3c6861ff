"""Pydantic's validation errors as one readable message: the key, the bad value and the fix."""
from __future__ import annotations

import json
import re
import types
import typing
from typing import Annotated, Any

from pydantic import BaseModel, ValidationError

from components.config.types import Invalid


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
        elif origin is list and isinstance(part, int):
            return args[0]
        else:
            return annotation


def shown(value: Any, limit: int = 60) -> str:
    """A value as a message shows it: its repr, cut when long (a pasted blob is not a message)."""
    try:
        text = repr(value)
    except RecursionError:  # nesting deeper than repr goes
        text = f"<a {type(value).__name__} nested too deep>"
    return text if len(text) <= limit else text[:limit] + "…"


def format_error(error: ValidationError, root: str, model: type[BaseModel], *, secret: bool = False) -> str:
    """One readable message: the key, the bad value and the fix (one problem only).

    `secret`: the value is a secret, so the message names the key and the rule, never the value.
    """
    errors = error.errors(include_url=False)
    # A misspelt required key is both missing and unknown; the unknown one shows the typo.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(p for p in first["loc"] if p != "[key]")
    parts = [root] if root else []
    parts += [str(p) if not isinstance(p, int) else f"[{p}]" for p in loc]
    path = ".".join(parts).replace(".[", "[")
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, Invalid) and not secret:
        return f"{'.'.join(p for p in (path, cause.key) if p)}: {cause}"
    path = path or "config"
    if secret:
        expected = re.sub(r" or instance of \w+", "", first["msg"].removeprefix("Value error, "))
        if first["type"] == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            known = f": known keys here are {', '.join(known_keys(parent))}" if parent else ""
            return f"{path}: unknown key '{loc[-1]}'{known}"
        return f"{path}: the value (not shown, it is a secret) is not valid: {expected[0].lower()}{expected[1:]}"
    # pydantic names our classes ("a valid dictionary or instance of Node"); users wrote YAML.
    message = re.sub(r" or instance of \w+", "", first["msg"].removeprefix("Value error, "))
    if first["type"] == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        known = f": known keys here are {', '.join(known_keys(parent))}" if parent else ""
        return f"{path}: unknown key '{loc[-1]}'{known}"
    if first["type"] == "missing":
        return f"{path}: required key is missing: add it (see the README's config reference)"
    value = first.get("input")
    if first["type"] == "int_type" and isinstance(value, str) and value.strip().isdigit():
        return f"{path}: {shown(value)} is a string: write the number without quotes, e.g. {value.strip()[:20]}"
    if first["type"] == "string_type" and isinstance(value, (int, float, bool)):
        return f"{path}: {shown(value)} is not a string: quote it, e.g. '{json.dumps(value)[:40]}'"
    if first["type"].startswith(("int_", "greater_than", "less_than", "float_")):
        return f"{path}: {shown(value)} is not allowed: {message[0].lower()}{message[1:]}"
    if first["type"] in ("value_error", "assertion_error"):
        return f"{path}: {message}"
    return f"{path}: {shown(value)} is not valid: {message[0].lower()}{message[1:]}"

