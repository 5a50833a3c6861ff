"""One harness: the real __main__.py evaluated per stack under the mock engine, once per session."""
from __future__ import annotations

import os

import pytest

from plan.engine import Evaluation, evaluate

# The real fleet needs root, ~8 GB and minutes: only `bash scripts/realfleet.sh` (REALFLEET=1) collects it.
collect_ignore = [] if os.environ.get("REALFLEET") else ["realfleet"]


@pytest.fixture(scope="session")
def local() -> Evaluation:
    return evaluate("local")


@pytest.fixture(scope="session")
def prod() -> Evaluation:
    return evaluate("prod")


@pytest.fixture(params=["local", "prod"], scope="session")
def stack(request: pytest.FixtureRequest, local: Evaluation, prod: Evaluation) -> Evaluation:
    return {"local": local, "prod": prod}[request.param]
