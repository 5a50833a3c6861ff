"""App databases on Open WebUI's real schema for the report's tests, built once per session."""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from openwebui_schema import AppDb, Dataset, create_app_database, generate, load, openwebui_python
from realservices import Postgres, postgres_server

REPO = Path(__file__).resolve().parents[2]
FIRST_DAY = date(2026, 10, 1)  # the data spans 20 days from here
DATA_DAYS = 20


@dataclass(frozen=True)
class Fleet:
    pg: Postgres
    dbs: dict[str, AppDb]
    data: dict[str, Dataset]

    def env(self, apps: list[str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANALYTICS_", "PG"))}
        env["ANALYTICS_APPS"] = ",".join(apps or self.dbs)
        for app in apps or self.dbs:
            env.update(self.dbs[app].analytics_env())
        return env


def run_report(fleet: Fleet, *args: str, apps: list[str] | None = None,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line, as a person runs it."""
    return subprocess.run([sys.executable, "-m", "fleet_analytics", "report", *args], cwd=REPO,
                          env={**fleet.env(apps), **(extra_env or {})}, capture_output=True, text=True)


@pytest.fixture(scope="session")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    python = openwebui_python()
    workdir = tmp_path_factory.mktemp("owui")
    start = int(datetime(FIRST_DAY.year, FIRST_DAY.month, FIRST_DAY.day, tzinfo=UTC).timestamp())
    with postgres_server() as pg:
        dbs, data = {}, {}
        for app, messages, seed in (("chat", 6000, 1), ("research-lab", 2500, 2)):
            dbs[app] = create_app_database(pg, app, python, workdir)
            data[app] = generate(app, messages, start, DATA_DAYS, seed)
            load(dbs[app], data[app])
        yield Fleet(pg, dbs, data)
