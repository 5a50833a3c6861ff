"""Scale benchmark: the real program under the mock engine vs a bare program registering the same graph.

    .venv/bin/python benchmarks/scale_bench.py [--replicas 10 100 1000] [--repeat 3] [--cold-runs 5] [--cold-only]

For prod and for prod-like fleets of N replicas (N/5 nodes, every node running 3 replicas of `chat`
and 2 of `docs`), each size in a fresh process of its own:
- warm evaluation of `__main__.py` (`plan.engine.evaluate`, its imports already paid; the median of
  `--repeat` evaluations, so one slow run on a shared machine does not decide the growth column; each
  round evaluates the program and every floor below once, so load that comes and goes reaches all), against
- the class replay (`replay_body(ev, classes=True)`, the primary floor): the same resources with the
  same types, names, inputs, secrets, parents, providers, dependencies and options, each built through
  its provider package's class (`pulumi_docker.Container(...)`) as a hand-written program would;
- the same-graph replay (`plan.replay`): the same graph registered by a bare program of
  `pulumi.CustomResource(type, name, inputs)`;
- the typed replay (`replay_body(ev, typed=True)`): the same, also declaring each type's output
  properties as the provider package's classes do (the SDK makes an Output for each of them);
- both again with Python's garbage collector left on during evaluation (what the engine turns off),
  to show what that lever is worth; the program with the SDK's own `contains_unknowns` (what the
  engine swaps for one that leaves no cycles), in the same rounds; peak memory (max RSS) of the process.
Then cold runs, what a user waits for: `python -m plan prod` and `python -m plan diff prod --old F
--new F` against the cold replay (`python -m plan.replay`: import pulumi and the providers, replay
the dumped graph, print the same plan): `--classes` (the primary floor: importing the provider modules
it uses and building each resource through its class), plain, and `--typed`.

Times are CPU seconds (user + system) of the measuring process or of the child command: on a
machine whose CPUs are shared with other work, wall time mostly measures the wait for a CPU. For a
single-threaded command on an idle machine the two are the same. Compare ratios within one run.
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from plan.engine import evaluate, evaluate_program, evaluation_to_json, stack_config  # noqa: E402
from plan.graph import longest_chain, waits_for  # noqa: E402
from plan.render import table  # noqa: E402
from plan.replay import replay_body  # noqa: E402

REPLICAS_PER_NODE = {"chat": 3, "docs": 2}


def scaled_config(nodes: int) -> dict[str, Any]:
    """prod's stack config with `nodes` nodes (n0 shared + load balancer), 5 replicas on each."""
    config = copy.deepcopy(stack_config("prod"))
    names = [f"n{i}" for i in range(nodes)]
    config["nodes"] = {n: {"host": f"10.{1 + i // 250}.{i % 250}.10"} for i, n in enumerate(names)}
    # Small pools and a large max_connections, so a thousand replicas pass the connection budgets.
    config["sharedServices"] = {"node": names[0], "postgres": {"settings": {"max_connections": "10000"}}}
    config["loadBalancer"] = {**config["loadBalancer"], "node": names[0]}
    config["apps"] = {
        app: {"hostname": f"{app}.example.com", "port": port, "migrationNode": names[0],
              "replicas": {n: REPLICAS_PER_NODE[app] for n in names},
              "databasePool": {"size": 1, "maxOverflow": 0}, "redisConnectionsPerReplica": 1}
        for app, port in (("chat", 3000), ("docs", 3100))}
    return config


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Any, gc_on: bool) -> tuple[float, Any]:
    """CPU seconds for fn(); with gc_on, the collector stays on inside the engine (its old behaviour)."""
    import plan.engine as engine
    paused = engine.paused_gc
    if gc_on:
        import contextlib
        engine.paused_gc = contextlib.nullcontext  # type: ignore[assignment]
    try:
        start = _cpu_s()
        result = fn()
        return _cpu_s() - start, result
    finally:
        engine.paused_gc = paused


def _with_sdk_contains_unknowns(fn: Any) -> Any:
    """fn() with the SDK's own `contains_unknowns` (the engine swaps in one that leaves no cycles)."""
    import contextlib

    import plan.engine as engine
    acyclic = engine.acyclic_contains_unknowns
    engine.acyclic_contains_unknowns = contextlib.nullcontext  # type: ignore[assignment]
    try:
        return fn()
    finally:
        engine.acyclic_contains_unknowns = acyclic


def _medians_of(repeat: int, sides: dict[str, Any]) -> dict[str, tuple[float, Any]]:
    """Median CPU seconds of `repeat` runs of each side, in rounds that run every side once (load that
    comes and goes reaches all alike); the collector's leftovers cleared before each run, untimed."""
    times: dict[str, list[float]] = {side: [] for side in sides}
    results: dict[str, Any] = {}
    for _ in range(repeat):
        for side, fn in sides.items():
            gc.collect()
            seconds, results[side] = _timed(fn, gc_on=False)
            times[side].append(seconds)
    return {side: (statistics.median(times[side]), results[side]) for side in sides}


def one_size(replicas: int, repeat: int = 3) -> dict[str, Any]:
    """Measure one size in this process (called in a child process per size)."""
    warnings.simplefilter("ignore")
    config = stack_config("prod") if replicas == 0 else scaled_config(replicas // sum(REPLICAS_PER_NODE.values()))
    stack = "prod" if replicas == 0 else "scale"
    evaluate("prod")  # imports and first-use costs paid once, for both sides
    ev = evaluate(stack, config)
    assert ev.error is None, ev.error
    urns = [r.urn for r in ev.resources]
    assert len(urns) == len(set(urns)), "duplicate URNs"
    sides = {"program": lambda: evaluate(stack, config),
             "program_sdk": lambda: _with_sdk_contains_unknowns(lambda: evaluate(stack, config)),
             "classes": lambda: evaluate_program(stack, replay_body(ev, classes=True), config),
             "bare": lambda: evaluate_program(stack, replay_body(ev), config),
             "typed": lambda: evaluate_program(stack, replay_body(ev, typed=True), config)}
    for fn in sides.values():
        fn()  # warm each side's paths too
    measured = _medians_of(repeat, sides)
    for side in ("classes", "bare", "typed"):
        assert {r.urn for r in measured[side][1].resources} == set(urns), side
    (program_s, _), (program_sdk_s, _), (classes_s, _), (replay_s, _), (typed_s, _) = (
        measured[side] for side in sides)
    del measured
    gc.collect()
    program_gc_s, _ = _timed(lambda: evaluate(stack, config), gc_on=True)
    gc.collect()
    classes_gc_s, _ = _timed(lambda: evaluate_program(stack, replay_body(ev, classes=True), config), gc_on=True)
    gc.collect()
    return {"replicas": replicas, "resources": len(urns), "program_s": program_s, "replay_s": replay_s,
            "typed_s": typed_s, "classes_s": classes_s,
            "program_gc_s": program_gc_s, "program_sdk_s": program_sdk_s, "classes_gc_s": classes_gc_s,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "chain": len(longest_chain(waits_for(ev.resources)))}


def _child(replicas: int, repeat: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--one", str(replicas), "--repeat", str(repeat)],
                         capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cold_rows(runs: int, bytecode_cache: bool = True) -> list[tuple[Any, ...]]:
    """Median CPU seconds of each cold command and of its two floors, `runs` rounds.

    Each round runs every command once, so load that comes and goes on a shared machine reaches every
    column alike. With `bytecode_cache`, Python caches compiled modules (in a throwaway
    PYTHONPYCACHEPREFIX, filled by one untimed run of each command first), as it does for a user's
    second run; without it, as this machine's environment has it (PYTHONDONTWRITEBYTECODE=1), every run
    compiles the project's own modules from source again (the floors import few of them).
    """
    with tempfile.TemporaryDirectory() as tmp:
        dump = str(Path(tmp) / "prod.json")
        Path(dump).write_text(evaluation_to_json(evaluate("prod")))
        prod_file = str(ROOT / "Pulumi.prod.yaml")
        env = dict(os.environ)
        if bytecode_cache:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        replay = [sys.executable, "-m", "plan.replay"]
        commands = {
            "python -m plan prod": ([sys.executable, "-m", "plan", "prod"], [dump]),
            "python -m plan diff prod": ([sys.executable, "-m", "plan", "diff", "prod", "--old", prod_file,
                                          "--new", prod_file], [dump, dump])}
        runs_of = {(label, side): cmd for label, (program, floor) in commands.items()
                   for side, cmd in (("program", program), ("classes", [*replay, "--classes", *floor]),
                                     ("bare", [*replay, *floor]), ("typed", [*replay, "--typed", *floor]))}
        times: dict[tuple[str, str], list[float]] = {key: [] for key in runs_of}
        for round_ in range(runs + (1 if bytecode_cache else 0)):
            for key, cmd in runs_of.items():
                start = _children_cpu_s()
                subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, env=env)
                if round_ or not bytecode_cache:
                    times[key].append(_children_cpu_s() - start)
        rows = []
        for label in commands:
            program, classes, bare, typed = (statistics.median(times[label, side])
                                             for side in ("program", "classes", "bare", "typed"))
            rows.append((label, f"{program:.2f}", f"{classes:.2f}", f"x{program / classes:.2f}",
                         f"{bare:.2f}", f"x{program / bare:.2f}", f"{typed:.2f}", f"x{program / typed:.2f}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replicas", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--cold-runs", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3, help="warm evaluations per size and side (median)")
    parser.add_argument("--cold-only", action="store_true", help="only the cold rows")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="cold runs compile the project's modules each time (as with PYTHONDONTWRITEBYTECODE=1)")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(one_size(args.one, args.repeat)))
        return 0
    if not args.cold_only:
        warm_table(args.replicas, args.repeat)
    cache = "" if args.no_bytecode_cache else ", bytecode cached"
    print(f"\nCold, what a user waits for, CPU seconds (median of {args.cold_runs} rounds{cache})")
    print(table(["command", "seconds", "class replay s", "ratio to class replay", "bare replay s", "ratio to bare",
                 "typed replay s", "ratio to typed"],
                cold_rows(args.cold_runs, not args.no_bytecode_cache)))
    return 0


def warm_table(replicas: list[int], repeat: int) -> None:
    sizes = [_child(n, repeat) for n in [0, *replicas]]
    rows, previous = [], None
    for m in sizes:
        growth = floor_growth = "-"
        if previous is not None and m["replicas"]:
            resources = m["resources"] / previous["resources"]
            growth = f"x{(m['program_s'] / previous['program_s']) / resources:.2f}"
            floor_growth = f"x{(m['classes_s'] / previous['classes_s']) / resources:.2f}"
        rows.append(("prod" if m["replicas"] == 0 else m["replicas"], m["resources"], f"{m['program_s']:.2f}",
                     f"{m['classes_s']:.2f}", f"x{m['program_s'] / m['classes_s']:.2f}",
                     f"{m['replay_s']:.2f}", f"x{m['program_s'] / m['replay_s']:.2f}",
                     f"{m['typed_s']:.2f}", f"x{m['program_s'] / m['typed_s']:.2f}",
                     f"{m['program_gc_s']:.2f}", f"{1 - m['program_s'] / m['program_gc_s']:.0%}",
                     f"x{m['program_gc_s'] / m['classes_gc_s']:.2f}",
                     f"{m['program_sdk_s']:.2f}", f"{1 - m['program_s'] / m['program_sdk_s']:.0%}", growth, floor_growth,
                     f"{m['max_rss_mb']:.0f}", m["chain"]))
        previous = m if m["replicas"] else None
    print(f"Warm evaluation, CPU seconds (each size in its own process; median of {repeat}, GC-on columns one run)")
    print(table(["replicas", "resources", "program s", "class replay s", "program / class replay",
                 "bare replay s", "program / bare", "typed replay s", "program / typed",
                 "program s, GC on", "saved by pausing GC", "program / class replay, GC on",
                 "program s, SDK's contains_unknowns", "saved by the engine's contains_unknowns",
                 "growth vs resources", "class replay growth", "max RSS MB", "longest chain"], rows))


if __name__ == "__main__":
    sys.exit(main())
