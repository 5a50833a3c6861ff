"""The graph functions behind the plan diff and the scale benchmark, on hand-made graphs."""
from __future__ import annotations

from typing import Any

import pytest

from benchmarks.scale_bench import scaled_config
from plan.diff import replacement_order
from plan.engine import Evaluation, Registered, evaluate
from plan.graph import dependents, longest_chain, topological_order, waits_for


def test_longest_chain_follows_dependencies_parents_and_providers() -> None:
    graph = {"a": set(), "b": {"a"}, "c": {"b"}, "d": {"a"}, "e": {"c", "d"}, "f": set()}
    assert longest_chain(graph) == ["a", "b", "c", "e"]
    assert topological_order(graph).index("a") < topological_order(graph).index("e")
    assert dependents(graph, "b") == {"c", "e"}
    with pytest.raises(ValueError, match="cycle"):
        topological_order({"x": {"y"}, "y": {"x"}})


def _res(name: str, deps: tuple[str, ...] = (), props: dict[str, list[str]] | None = None,
         parent: str = "", provider: str = "", **inputs: Any) -> Registered:
    return Registered(urn=name, type="test:index:Resource", name=name, raw_inputs=inputs, state={},
                      parent=parent, provider=provider, dependencies=list(deps), protect=False,
                      retain_on_delete=False, delete_before_replace=True, custom=True,
                      property_dependencies=props or {})


def test_waits_for_counts_parent_and_provider_edges() -> None:
    graph = waits_for([_res("comp"), _res("prov::id"), _res("r", parent="comp", provider="prov::id::id")])
    assert graph["r"] == {"comp", "prov::id"}


def _pulumi_integration_graph(base_state: int) -> Evaluation:
    """pulumi/pulumi tests/integration/delete_before_create step1: a `state` change replaces."""
    return Evaluation("test", {}, resources=[
        _res("base", state=base_state),
        _res("dependent", ("base",), {"state": ["base"]}, state=base_state),
        _res("dependent-2", ("base", "dependent"), state=99),
        _res("dependent-3", ("base", "dependent"), {"noReplace": ["base", "dependent"]}, state=99),
        _res("dependent-4", ("dependent", "dependent-2"), {"state": ["dependent", "dependent-2"]}, state=0),
    ])


def test_replacement_order_reproduces_pulumis_delete_before_replace_integration_test() -> None:
    old, new = _pulumi_integration_graph(42), _pulumi_integration_graph(99)
    steps = replacement_order(old, new, ["base"], replaces=lambda _type, key: key == "state")
    # The order the engine's test asserts: dependents that read base's outputs go first, in reverse;
    # dependent-2 (depends_on only) and dependent-3 (a no-replace input) are left running.
    assert steps == [("delete", "dependent-4"), ("delete", "dependent"), ("delete", "base"),
                     ("create", "base"), ("create", "dependent"), ("create", "dependent-4")]


def test_the_longest_chain_does_not_grow_with_the_number_of_nodes() -> None:
    small, large = evaluate("scale", scaled_config(2)), evaluate("scale", scaled_config(20))
    assert small.error is None and large.error is None
    assert len(large.resources) > 5 * len(small.resources) / 2
    assert len(longest_chain(waits_for(small.resources))) == len(longest_chain(waits_for(large.resources)))
