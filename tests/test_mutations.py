"""Seeded bugs in the core fail the tests that guard it.

Each mutation is a source edit applied to a copy of the project; the tests listed for it run there, in a
process of their own, and every one of them must fail (an assertion, not an import or collection error).
The unmutated copy passes the same tests, so each failure is the seeded bug's.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from project_copy import copy_project


@dataclass(frozen=True)
class Mutation:
    path: str
    find: str               # must occur exactly once in `path`
    replace: str
    catches: tuple[str, ...]  # test ids that must each fail on this bug


LB_UPSTREAMS = "tests/components/test_load_balancer.py::test_every_replica_of_an_app_is_in_its_upstream_and_in_no_other"
ENV = "tests/render/test_openwebui_env.py"

MUTATIONS = {
    "topology: only the first replica on each node": Mutation(
        "components/topology.py",
        "for n in range(1, spec.replicas[node] + 1)", "for n in range(1, 2)",
        (f"{LB_UPSTREAMS}[local]", f"{LB_UPSTREAMS}[prod]",
         "tests/components/test_topology.py::test_prod_replicas_ports_and_migrating_replica",
         "tests/test_fleet.py::test_prod_places_services_on_shared_node_and_replicas_where_config_says")),
    "env: every replica runs migrations": Mutation(
        "components/render/openwebui_env.py",
        '"true" if migrates else "false"', '"true"',
        (f"{ENV}::test_a_replica_shares_websockets_vectors_and_files_with_its_app_and_does_not_migrate",
         f"{ENV}::test_the_migrating_replica_differs_only_in_that_it_migrates",
         "tests/test_fleet.py::test_exactly_one_replica_per_app_runs_migrations[local]",
         "tests/test_fleet.py::test_exactly_one_replica_per_app_runs_migrations[prod]")),
    "env: every app's vectors under one collection prefix": Mutation(
        "components/render/openwebui_env.py",
        '"QDRANT_COLLECTION_PREFIX": app_name,', '"QDRANT_COLLECTION_PREFIX": "open-webui",',
        (f"{ENV}::test_a_replica_shares_websockets_vectors_and_files_with_its_app_and_does_not_migrate",
         "tests/test_fleet.py::test_replicas_of_an_app_share_its_secrets_and_apps_share_none",
         "tests/components/test_backup_job.py::test_job_and_replicas_agree_on_database_and_collection_names[local]",
         "tests/components/test_backup_job.py::test_job_and_replicas_agree_on_database_and_collection_names[prod]")),
    "upstream: one server per app": Mutation(
        "components/render/nginx.py",
        "for u in sorted(site.upstreams, key=lambda u: (u.address, u.port))",
        "for u in sorted(site.upstreams, key=lambda u: (u.address, u.port))[:1]",
        (f"{LB_UPSTREAMS}[local]", f"{LB_UPSTREAMS}[prod]",
         "tests/components/test_load_balancer.py::test_adding_a_node_changes_the_upstream_list_and_only_the_config_step_of_the_lb")),
    "upstream: every server at Open WebUI's container port": Mutation(
        "components/render/nginx.py",
        'f"    server {u.address}:{u.port} max_fails', 'f"    server {u.address}:8080 max_fails',
        (f"{LB_UPSTREAMS}[prod]",
         "tests/components/test_load_balancer.py::test_adding_a_node_changes_the_upstream_list_and_only_the_config_step_of_the_lb",
         "tests/components/test_load_balancer.py::test_native_mode_writes_the_config_over_ssh_with_nginx_t_and_reload")),
}

_RESULT = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)", re.M)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("mutation") / "pristine")


def _mutated(pristine: Path, mutation: Mutation, where: Path) -> Path:
    shutil.copytree(pristine, where)
    target = where / mutation.path
    source = target.read_text()
    assert source.count(mutation.find) == 1, (
        f"{mutation.path}: the mutation's anchor {mutation.find!r} is not there exactly once; "
        "point it at the line that now does the same job")
    target.write_text(source.replace(mutation.find, mutation.replace))
    return where


def _run_tests(project: Path, test_ids: tuple[str, ...]) -> tuple[int, dict[str, str], str]:
    """Run `test_ids` in `project` with pytest in a subprocess: (exit code, test id -> outcome, output)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rA", "-q",
                          "--no-header", "-o", "addopts=--strict-markers", *test_ids],
                         cwd=project, env=env, capture_output=True, text=True, timeout=300)
    outcomes = {test_id: outcome for outcome, test_id in _RESULT.findall(run.stdout)}
    return run.returncode, outcomes, run.stdout + run.stderr


def test_the_unmutated_copy_passes_every_test_the_mutations_run(pristine: Path) -> None:
    every = tuple(sorted({test_id for m in MUTATIONS.values() for test_id in m.catches}))
    code, outcomes, output = _run_tests(pristine, every)
    assert code == 0, output[-3000:]
    assert outcomes == dict.fromkeys(every, "PASSED"), output[-3000:]


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_each_seeded_bug_fails_every_test_listed_for_it(name: str, pristine: Path, tmp_path: Path) -> None:
    mutation = MUTATIONS[name]
    project = _mutated(pristine, mutation, tmp_path / "project")
    code, outcomes, output = _run_tests(project, mutation.catches)
    print(f"\n{name} -> failed: {', '.join(t for t, o in outcomes.items() if o == 'FAILED')}")
    assert code == 1, f"exit {code} (1 means tests failed; anything else is not the bug's doing)\n{output[-3000:]}"
    assert outcomes == dict.fromkeys(mutation.catches, "FAILED"), output[-3000:]
