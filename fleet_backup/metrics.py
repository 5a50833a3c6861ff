"""Prometheus metrics, read from the state file at every scrape (so they survive restarts)."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import start_http_server
from prometheus_client.core import REGISTRY, GaugeMetricFamily
from prometheus_client.registry import Collector

from fleet_backup.status import State


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


class StateCollector(Collector):
    def __init__(self, state: State) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s: dict[str, Any] = self.state.read()
        success, last, verify = s.get("lastSuccess"), s.get("lastBackup"), s.get("lastVerify")
        if success:
            yield GaugeMetricFamily("fleet_backup_last_success_timestamp_seconds",
                                    "Unix time the last successful backup finished", value=_ts(success["finishedAt"]))
            yield GaugeMetricFamily("fleet_backup_last_success_duration_seconds",
                                    "How long the last successful backup took", value=success["durationSeconds"])
            yield GaugeMetricFamily("fleet_backup_last_success_objects",
                                    "Objects stored by the last successful backup", value=success.get("objects", 0))
            size = GaugeMetricFamily("fleet_backup_last_success_bytes",
                                     "Bytes stored by the last successful backup, per app", labels=["app"])
            for app, n in sorted(success.get("bytesPerApp", {}).items()):
                size.add_metric([app], n)
            yield size
        if last:
            yield GaugeMetricFamily("fleet_backup_last_run_success",
                                    "1 if the last backup succeeded, 0 if it failed", value=int(last["exitCode"] == 0))
            yield GaugeMetricFamily("fleet_backup_last_run_exit_code", "Exit code of the last backup",
                                    value=last["exitCode"])
        if verify:
            yield GaugeMetricFamily("fleet_backup_last_verify_success",
                                    "1 if the last restore drill passed, 0 if it failed",
                                    value=int(verify["exitCode"] == 0))
            yield GaugeMetricFamily("fleet_backup_last_verify_timestamp_seconds",
                                    "Unix time the last restore drill finished", value=_ts(verify["finishedAt"]))


def serve(state: State, address: str, port: int) -> None:
    """Serve /metrics in a background thread of the schedule process."""
    REGISTRY.register(StateCollector(state))
    start_http_server(port, addr=address)
