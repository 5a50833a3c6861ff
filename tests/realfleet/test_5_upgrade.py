"""Open WebUI's upgrade order, for real: the steps `plan diff` computes for an image bump, executed on the
live fleet while a watcher asks every replica of the app whether it serves.

Only one Open WebUI version is installed, so the "new" replicas run the same code: what is under test is
the order (which process runs when), told apart by the image each replica was started for.
"""
from __future__ import annotations

import copy
import threading
import time
from pathlib import Path

import requests
import yaml

from plan.diff import diff_evaluations, replacement_order
from plan.engine import evaluate, read_stack_file
from tests.realfleet.runner import STACK, containers_of

APP = "chat"
NEW_IMAGE = "ghcr.io/open-webui/open-webui:v0.12.5"


class Watcher:
    """Samples, until stopped, which replicas answer /health and which image each one was started for."""

    def __init__(self, fleet, replicas: list[dict]) -> None:
        self.fleet, self.replicas = fleet, replicas
        self.samples: list[dict[str, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        # And once more when every step has finished: what serves once `pulumi up` returns. (The last
        # step may end between two samples, e.g. a one-shot started beside the last replica.)
        self._sample()

    def _run(self) -> None:
        deadline = time.monotonic() + 900
        while not self._stop.is_set() and time.monotonic() < deadline:
            self._sample()
            self._stop.wait(0.2)

    def _sample(self) -> None:
        sample = {}
        for r in self.replicas:
            image = self.fleet.runner.runtime["containers"][r["resource"]]["inputs"]["image"]
            try:
                ok = requests.get(f"http://{r['address']}:{r['port']}/health", timeout=1).status_code == 200
            except requests.RequestException:
                ok = False
            if ok:
                sample[r["resource"]] = image
        self.samples.append(sample)


def test_an_image_bump_never_lets_an_old_and_a_new_replica_serve_one_database(fleet) -> None:
    old_config = read_stack_file(Path(fleet.runner.runtime["config"]))
    raw = {"config": {f"openwebui-fleet:{k}": v for k, v in copy.deepcopy(old_config).items()}}
    raw["config"]["openwebui-fleet:apps"][APP]["image"] = NEW_IMAGE
    edited = fleet.state / "Pulumi.realfleet-upgrade.yaml"
    edited.write_text(yaml.safe_dump(raw))
    old, new = evaluate(STACK, old_config), evaluate(STACK, read_stack_file(edited))
    diff = diff_evaluations(old, new)
    steps = [s for s in replacement_order(old, new, [c.urn for c in diff.of("replace")])
             if s[1] in {c.resource for c in containers_of(new)}]
    new_containers = {c.resource: c for c in containers_of(new)}
    replicas = fleet.data["apps"][APP]["replicas"]
    # The replicas, and the app's grants step (its label holds the migrating replica's id): it runs
    # again once the new migrating replica has started.
    assert {name for _, name in steps} == {r["resource"] for r in replicas} | {f"{APP}-analytics-grants"}

    with Watcher(fleet, replicas) as watcher:
        i = 0
        while i < len(steps):
            action, name = steps[i]
            if action == "delete":
                fleet.runner.stop(name)
                i += 1
                continue
            # Consecutive creates that do not wait for each other start together, as Pulumi runs them.
            batch = [name]
            while (i + len(batch) < len(steps) and steps[i + len(batch)][0] == "create"
                   and not set(new_containers[steps[i + len(batch)][1]].deps) & set(batch)):
                batch.append(steps[i + len(batch)][1])
            threads = [threading.Thread(target=fleet.runner.start, args=(new_containers[n],)) for n in batch]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            i += len(batch)

    new_image = next(iter({new_containers[r["resource"]].inputs["image"] for r in replicas}))
    mixed = [s for s in watcher.samples if len(set(s.values())) > 1]
    assert mixed == []
    assert any(set(s.values()) == {new_image} and len(s) == len(replicas) for s in watcher.samples)
    records = fleet.runner.runtime["containers"]
    migrator = next(r["resource"] for r in replicas if r["migrates"])
    for r in replicas:
        assert records[r["resource"]]["inputs"]["image"] == new_image
        if r["resource"] != migrator:
            assert records[r["resource"]]["started_at"] >= records[migrator]["healthy_at"]
