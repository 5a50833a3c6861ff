"""The one-shot commands turn Python's collector off for their own process only (plan/cli.py)."""
from __future__ import annotations

import gc
import importlib
import subprocess
import sys

from plan.engine import PROJECT_DIR


def test_importing_the_commands_leaves_the_garbage_collector_on() -> None:
    for module in ("plan.__main__", "plan.replay"):
        importlib.reload(importlib.import_module(module))
        assert gc.isenabled(), module


def test_local_and_prod_never_load_the_provider_packages_they_do_not_use() -> None:
    """Cold `python -m plan` pays for every package imported: pulumi_tls only where a stack uses tls or
    ACME, pulumi_command only where one runs commands on a host (native nginx, firewall)."""
    code = ("import sys; from plan.engine import evaluate\n"
            "for stack in ('local', 'prod'):\n"
            "    assert evaluate(stack).error is None\n"
            "print(sorted(m for m in ('pulumi_tls', 'pulumi_command') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"
