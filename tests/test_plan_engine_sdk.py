"""What the mock engine swaps in the SDK while it evaluates a program (plan/engine.py)."""
from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from plan.engine import contains_unknowns, evaluate_program

SDK_CONTAINS_UNKNOWNS = rpc.contains_unknowns


def _used_during_an_evaluation() -> Callable[[Any], bool]:
    used: list[Callable[[Any], bool]] = []
    evaluate_program("test", lambda: used.append(rpc.contains_unknowns))
    return used[0]


def test_contains_unknowns_during_an_evaluation_leaves_no_garbage_for_the_collector() -> None:
    function = _used_during_an_evaluation()
    enabled = gc.isenabled()
    gc.disable()
    try:
        gc.collect()
        for _ in range(100):
            function({"env": [{"name": "A", "value": "1"}], "ports": [3000]})
        assert gc.collect() == 0
    finally:
        if enabled:
            gc.enable()


def test_the_sdks_contains_unknowns_is_back_after_an_evaluation() -> None:
    _used_during_an_evaluation()
    assert rpc.contains_unknowns is SDK_CONTAINS_UNKNOWNS


looped: list[Any] = [1, {"a": "b"}]
looped.append(looped)
CASES = [
    (None, False), ("text", False), (3, False), ({}, False), ([], False),
    ({"a": [1, {"b": "c"}], "d": None}, False),
    (pulumi.UNKNOWN, True),
    ({"a": [1, {"b": pulumi.UNKNOWN}]}, True),
    ([[[pulumi.UNKNOWN]]], True),
    ({"a": (pulumi.UNKNOWN,)}, False),  # only dicts and lists are looked into, as the SDK does
    (looped, False),
    ([looped, pulumi.UNKNOWN], True),
]


@pytest.mark.parametrize(("value", "expected"), CASES)
def test_contains_unknowns_answers_as_the_sdk_does(value: Any, expected: bool) -> None:
    assert contains_unknowns(value) is expected
    assert SDK_CONTAINS_UNKNOWNS(value) is expected
