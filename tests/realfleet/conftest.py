"""The fleet of tests/realfleet/Pulumi.realfleet.yaml, up once for the session and always taken down.

REALFLEET_STATE=DIR uses a fleet already started with `python -m tests.realfleet up --state DIR` (and
leaves it running), for trying a change without waiting for `up` each time.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from realservices import require_binary
from tests.realfleet import images, netns
from tests.realfleet.client import Api, load_fleet, replica_urls, resolving
from tests.realfleet.runner import DEFAULT_CONFIG, Runner, down

BINARIES = ["ip", "nft", "nginx", "initdb", "postgres", "psql", "pg_isready", "pg_dump", "pg_restore",
            "redis-server", "redis-cli", "curl", "wget", "runuser"]


def _require_root_and_openwebui() -> None:
    missing = []
    if os.geteuid() != 0:
        missing.append("root (network namespaces)")
    exe = images.openwebui_venv() / "bin" / "open-webui"
    if not exe.exists():
        missing.append(f"Open WebUI at {exe} (bash scripts/realfleet.sh installs it; OPENWEBUI_VENV points elsewhere)")
    if missing:
        message = "the real fleet needs " + ", ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def _require_prerequisites() -> None:
    _require_root_and_openwebui()
    for binary in BINARIES:
        require_binary(binary)


@dataclass
class LiveFleet:
    """The running fleet: its fleet.json, the runner that controls its processes, and client helpers."""

    state: Path
    runner: Runner
    data: dict[str, Any] = field(default_factory=dict)

    def refresh(self) -> None:
        self.data = load_fleet(self.state)
        self.runner = Runner(self.state)

    @property
    def lb_address(self) -> str:
        return self.data["lb"]["address"]

    def names(self) -> dict[str, str]:
        return {a["hostname"]: self.lb_address for a in self.data["apps"].values()}

    def url(self, app: str) -> str:
        return self.data["apps"][app]["url"]

    def admin(self, app: str) -> Api:
        """The app's admin with the token from its sign-up (Open WebUI allows 15 sign-ins of one account
        per 3 minutes, counted in Redis across replicas: tests sign in only where that is the point)."""
        return Api(self.url(app), self.data["apps"][app]["admin"]["token"])

    def replicas(self, app: str) -> dict[str, str]:
        return replica_urls(self.data, app)

    def resource(self, container: str) -> str:
        """The resource name (the plan's stable key) of the container named `container`."""
        return next(r for r, rec in self.runner.runtime["containers"].items() if rec["name"] == container)

    def exec(self, resource: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        """`docker exec` into a container: its node's namespace, its environment."""
        record = self.runner.runtime["containers"][resource]
        return subprocess.run(netns.in_ns(record["namespace"], argv), env=record["launch"]["env"],
                              cwd=record["launch"]["cwd"], capture_output=True, text=True, **kw)

    def env(self, resource: str) -> dict[str, str]:
        return dict(self.runner.runtime["containers"][resource]["launch"]["env"])


@pytest.fixture(scope="session")
def stack_config() -> dict[str, Any]:
    """The test stack as written (expected values come from here, not from the runner)."""
    return {k.removeprefix("openwebui-fleet:"): v
            for k, v in yaml.safe_load(DEFAULT_CONFIG.read_text())["config"].items()}


@contextlib.contextmanager
def fleet_of(config: Path) -> Iterator[LiveFleet]:
    """The fleet of `config`, up until the block ends, then always taken down."""
    _require_prerequisites()
    state = Path(tempfile.mkdtemp(prefix="realfleet-"))
    try:
        runner = Runner(state)
        runner.up(config)
        live = LiveFleet(state, runner)
        live.refresh()
        with resolving(live.names()):
            yield live
    finally:
        down(state)
        if not os.environ.get("REALFLEET_KEEP"):
            shutil.rmtree(state, ignore_errors=True)
        else:
            print(f"realfleet: state kept in {state}")


@pytest.fixture(scope="session")
def fleet() -> Iterator[LiveFleet]:
    if reuse := os.environ.get("REALFLEET_STATE"):
        _require_prerequisites()
        live = LiveFleet(Path(reuse), Runner(Path(reuse)))
        live.refresh()
        with resolving(live.names()):
            yield live
        return
    with fleet_of(DEFAULT_CONFIG) as live:
        yield live
