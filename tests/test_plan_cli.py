"""The one-shot commands turn Python's collector off for their own process only (plan/cli.py)."""
from __future__ import annotations

import gc
import importlib


def test_importing_the_commands_leaves_the_garbage_collector_on() -> None:
    for module in ("plan.__main__", "plan.replay"):
        importlib.reload(importlib.import_module(module))
        assert gc.isenabled(), module
