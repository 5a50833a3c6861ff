"""The fleet run for real (tests/realfleet): LB vs one replica direct, recovery from a node cut, time to up.

    .venv/bin/python benchmarks/realfleet_bench.py [--seconds 10]    # as root, OPENWEBUI_VENV=/path/to/venv

Brings up tests/realfleet/Pulumi.realfleet.yaml (about 2 minutes), measures, and always takes it down.
Only the namespaces' addresses (198.18.0.0/24) are contacted.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from tests.realfleet import netns  # noqa: E402
from tests.realfleet.client import replica_urls, resolving  # noqa: E402
from tests.realfleet.load import Load  # noqa: E402
from tests.realfleet.runner import DEFAULT_CONFIG, Runner, down  # noqa: E402

PATH = "/api/v1/auths/"   # authenticated: reads the session user from the app's database


def sequential(url: str, token: str, count: int) -> list[float]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    latencies = []
    for _ in range(count):
        start = time.perf_counter()
        r = session.get(url + PATH, timeout=30)
        latencies.append(time.perf_counter() - start)
        r.raise_for_status()
    return latencies


def throughput(url: str, token: str, seconds: float, workers: int) -> tuple[float, int]:
    with Load(url, token, workers=workers, max_seconds=seconds, timeout=30) as load:
        time.sleep(seconds)  # a fixed measuring window, not synchronisation
    return load.result.ok / seconds, len(load.result.failures)


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


def recovery_after_cut(url: str, token: str, node: str, normal_s: float, window_s: float = 25) -> tuple[float, int]:
    """Seconds from cutting `node` until the last request slower than `normal_s` (or failed) ended, over a
    fixed `window_s` with the node cut (short: a longer cut freezes the node's replicas, NOTES.md)."""
    with Load(url, token, workers=4, max_seconds=120, timeout=10) as load:
        while load.count() < 50:
            time.sleep(0.05)
        cut_at = time.monotonic()
        netns.set_link(node, False)
        try:
            time.sleep(window_s)  # the measuring window, not synchronisation
        finally:
            netns.set_link(node, True)
        with load._lock:
            pairs = [(t, lat) for t, lat in zip(load.result.times, load.result.latencies) if cut_at <= t]
            failed = len(load.result.failures)
    slow_ends = [t + lat - cut_at for t, lat in pairs if lat >= normal_s and t + lat - cut_at <= window_s]
    return (max(slow_ends) if slow_ends else 0.0), failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="realfleet-bench-"))
    try:
        fleet = Runner(state).up(DEFAULT_CONFIG)
        runtime = Runner(state).runtime["containers"]
        replicas = [r["resource"] for r in fleet["apps"]["chat"]["replicas"]]
        healthy = max(runtime[r]["healthy_at"] for r in replicas) - Runner(state).runtime["up_started_at"]
        lb = fleet["lb"]["address"]
        names = {a["hostname"]: lb for a in fleet["apps"].values()}
        token = fleet["apps"]["chat"]["admin"]["token"]
        with resolving(names):
            via_lb = fleet["apps"]["chat"]["url"]
            direct = replica_urls(fleet, "chat")["chat-node-a-1"]
            sequential(via_lb, token, 50), sequential(direct, token, 50)   # warm both paths
            lat_direct = sequential(direct, token, args.requests)
            lat_lb = sequential(via_lb, token, args.requests)
            rps_direct, fail_direct = throughput(direct, token, args.seconds, args.workers)
            rps_lb, fail_lb = throughput(via_lb, token, args.seconds, args.workers)
            normal = 2 * pct(lat_lb, 99) / 1000
            recovered, cut_failures = recovery_after_cut(via_lb, token, "node-b", normal)
        print(f"|                                  | direct (1 replica) | via LB (3 replicas) | LB / direct |")
        print(f"|----------------------------------|--------------------|---------------------|-------------|")
        for name, d, v in (("latency p50 (ms)", pct(lat_direct, 50), pct(lat_lb, 50)),
                           ("latency p99 (ms)", pct(lat_direct, 99), pct(lat_lb, 99)),
                           (f"throughput (req/s, {args.workers} clients)", rps_direct, rps_lb)):
            print(f"| {name:32} | {d:18.1f} | {v:19.1f} | x{v / d:<10.2f} |")
        print(f"\nfailed during throughput runs: direct {fail_direct}, via LB {fail_lb}")
        print(f"node-b cut for 25 s: the last request slower than {normal * 1000:.0f} ms (2 x LB p99) ended "
              f"{recovered:.1f} s after the cut; {cut_failures} failed (10 s client timeout)")
        print(f"up: {fleet['up_seconds']:.0f} s in all; every chat replica healthy {healthy:.0f} s after up started")
    finally:
        down(state)
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
