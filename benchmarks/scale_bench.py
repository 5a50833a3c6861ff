"""Scale benchmark: the real program under the mock engine at 10, 100 and 1,000 replicas vs bare SDK.

    /tmp/venv/bin/python benchmarks/scale_bench.py [--replicas 10 100 1000]

Each size is a prod-like fleet of N/5 nodes, every node running 3 replicas of `chat` and 2 of
`docs`. The same run registers as many plain `random.RandomId` resources under the same mock
engine (the cost of the SDK itself), and reports the longest chain of waits in the resource graph
(dependencies, parents, providers): steps that must run one after another in `pulumi up`.
"""
from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plan.engine import evaluate, evaluate_program, stack_config  # noqa: E402
from plan.graph import longest_chain, waits_for  # noqa: E402
from plan.render import table  # noqa: E402

REPLICAS_PER_NODE = {"chat": 3, "docs": 2}


def scaled_config(nodes: int) -> dict[str, Any]:
    """prod's stack config with `nodes` nodes (n0 shared + load balancer), 5 replicas on each."""
    config = copy.deepcopy(stack_config("prod"))
    names = [f"n{i}" for i in range(nodes)]
    config["nodes"] = {n: {"host": f"10.{1 + i // 250}.{i % 250}.10"} for i, n in enumerate(names)}
    config["sharedServices"] = {"node": names[0]}
    config["loadBalancer"] = {**config["loadBalancer"], "node": names[0]}
    config["apps"] = {
        "chat": {"hostname": "chat.example.com", "port": 3000, "replicas": {n: REPLICAS_PER_NODE["chat"] for n in names}},
        "docs": {"hostname": "docs.example.com", "port": 3100, "replicas": {n: REPLICAS_PER_NODE["docs"] for n in names}},
    }
    return config


def bare_sdk(count: int) -> float:
    """Seconds to register `count` RandomId resources (no components, no dependencies)."""
    import pulumi_random as random

    def body() -> None:
        for i in range(count):
            random.RandomId(f"id-{i}", byte_length=8)

    start = time.perf_counter()
    ev = evaluate_program("bare", body)
    elapsed = time.perf_counter() - start
    assert len(ev.resources) == count and ev.error is None
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[10, 100, 1000])
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", DeprecationWarning)
    evaluate("prod")  # warm imports once, so the first size does not pay for them
    rows: list[tuple[Any, ...]] = []
    previous: float | None = None
    for replicas in args.replicas:
        nodes = replicas // sum(REPLICAS_PER_NODE.values())
        start = time.perf_counter()
        ev = evaluate("scale", scaled_config(nodes))
        seconds = time.perf_counter() - start
        if ev.error:
            print(f"{replicas} replicas: config rejected: {ev.error}")
            return 1
        urns = [r.urn for r in ev.resources]
        assert len(urns) == len(set(urns)), "duplicate URNs"
        bare = bare_sdk(len(ev.resources))
        chain = longest_chain(waits_for(ev.resources))
        growth = "-" if previous is None else f"x{seconds / previous:.1f}"
        rows.append((replicas, nodes, len(ev.resources), f"{seconds:.2f}", f"{1000 * seconds / len(ev.resources):.2f}",
                     f"{bare:.2f}", f"x{seconds / bare:.2f}", growth, len(chain)))
        previous = seconds
    print(table(["replicas", "nodes", "resources", "seconds", "ms/resource", "bare SDK s", "vs bare",
                 "vs previous row", "longest chain"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
