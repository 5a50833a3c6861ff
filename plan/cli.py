"""What the one-shot commands (`python -m plan`, `python -m plan.replay`) do about Python's garbage collector.

A command evaluates once, prints and exits: a collection frees nothing it would reuse. Without
these, a cold `python -m plan prod` spent a quarter of its CPU in collections: during the imports,
after the evaluation (`plan.engine.paused_gc` re-enables the collector over everything the
evaluation made) and at interpreter exit, which collects every object still alive
(benchmarks/scale_bench.py, cold rows). Imported by tests, these modules leave the collector alone.
"""
from __future__ import annotations

import gc


def one_shot(module_name: str) -> None:
    """Turn the collector off for the rest of this process if `module_name` is the command being run."""
    if module_name == "__main__":
        gc.disable()


def exit_code(code: int) -> int:
    """Call last: objects moved to the permanent generation are not rescanned by the collection at exit."""
    gc.freeze()
    return code
