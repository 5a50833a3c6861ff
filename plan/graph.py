"""The resource graph of an Evaluation as plain data: edges, a stable topological order, the longest chain.

An edge `a -> b` means `b` waits for `a`: `b` lists `a` in its dependencies, or `a` is `b`'s parent
or `b`'s provider. Pure functions over `{urn: set(of urns it waits for)}`, testable on a hand-made graph.
"""
from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping

from plan.engine import Registered

Graph = Mapping[str, Iterable[str]]  # urn -> urns it waits for


def waits_for(resources: Iterable[Registered]) -> dict[str, set[str]]:
    """Each resource's predecessors (dependencies, parent, provider) among the registered ones."""
    resources = list(resources)
    known = {r.urn for r in resources}
    graph: dict[str, set[str]] = {}
    for r in resources:
        preds = set(r.dependencies) | {r.parent, r.provider_urn}
        for urns in r.property_dependencies.values():
            preds.update(urns)
        graph[r.urn] = {p for p in preds if p in known and p != r.urn}
    return graph


def topological_order(graph: Graph, order: Iterable[str] | None = None) -> list[str]:
    """Predecessors first; among ready URNs, `order` decides (default: the graph's own). Raises on a cycle."""
    order = list(graph) if order is None else list(order)
    rank = {u: i for i, u in enumerate(order)}
    waiting = {u: len(set(graph.get(u, ())) & rank.keys()) for u in order}
    succ: dict[str, list[str]] = {}
    for u in order:
        for p in set(graph.get(u, ())) & rank.keys():
            succ.setdefault(p, []).append(u)
    ready = [rank[u] for u in order if waiting[u] == 0]
    heapq.heapify(ready)
    done: list[str] = []
    while ready:
        u = order[heapq.heappop(ready)]
        done.append(u)
        for s in succ.get(u, ()):
            waiting[s] -= 1
            if waiting[s] == 0:
                heapq.heappush(ready, rank[s])
    if len(done) != len(order):
        raise ValueError(f"dependency cycle among {sorted(set(order) - set(done))[:5]}")
    return done


def dependents(graph: Graph, urn: str) -> set[str]:
    """Every URN that waits for `urn`, directly or transitively."""
    succ: dict[str, set[str]] = {}
    for u, preds in graph.items():
        for p in preds:
            succ.setdefault(p, set()).add(u)
    found: set[str] = set()
    stack = [urn]
    while stack:
        for s in succ.get(stack.pop(), ()):
            if s not in found:
                found.add(s)
                stack.append(s)
    return found


def longest_chain(graph: Graph) -> list[str]:
    """The longest path of waits (as URNs, first to last): how many steps must run one after another."""
    best: dict[str, list[str]] = {}
    for u in topological_order(graph):
        longest_pred = max((best[p] for p in graph[u] if p in best), key=len, default=[])
        best[u] = [*longest_pred, u]
    return max(best.values(), key=len, default=[])
