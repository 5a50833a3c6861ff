"""Load balancer benchmark: the rendered nginx.conf under a real nginx vs one stub replica direct.

    /tmp/venv/bin/python benchmarks/lb_bench.py [--seconds 5]

Everything runs on 127.0.0.1 and stops by itself. Clients are asyncio loops in separate processes.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from components.render.nginx import NginxSettings, Site, Upstream, render_nginx_conf  # noqa: E402
from realservices import free_port, loopback_conf, nginx_server, require_binary, stub_upstream  # noqa: E402

HOST = "chat.test"
CLIENT_PROCESSES = 2


@dataclass
class Load:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    upstreams: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, other: Load) -> None:
        self.ok += other.ok
        self.failed += other.failed
        self.latencies += other.latencies
        for mine, theirs in ((self.upstreams, other.upstreams), (self.errors, other.errors)):
            for k, v in theirs.items():
                mine[k] = mine.get(k, 0) + v


async def _connection(port: int, seconds: float, keepalive: bool, load: Load) -> None:
    """GETs on one connection (or a fresh one per request) until the deadline."""
    request = (f"GET /api/chats HTTP/1.1\r\nHost: {HOST}\r\n"
               f"{'' if keepalive else 'Connection: close' + chr(13) + chr(10)}\r\n").encode()
    deadline = time.monotonic() + seconds
    reader = writer = None
    while time.monotonic() < deadline:
        start = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(request)
            head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode("latin-1")
            headers = dict(line.lower().split(": ", 1) for line in head.split("\r\n")[1:-2])
            await reader.readexactly(int(headers["content-length"]))
            if head[9:12] != "200":
                raise ConnectionError(head[:12])
            load.ok += 1
            load.latencies.append(time.perf_counter() - start)
            name = headers.get("x-upstream", "?")
            load.upstreams[name] = load.upstreams.get(name, 0) + 1
            if headers.get("connection") == "close":  # nginx ends a connection after keepalive_requests
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError, KeyError) as e:
            load.failed += 1
            load.errors[type(e).__name__] = load.errors.get(type(e).__name__, 0) + 1
            if writer is not None:
                writer.close()
            writer = None
            continue
        if not keepalive and writer is not None:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


def _client_process(port: int, seconds: float, connections: int, keepalive: bool) -> Load:
    async def main() -> Load:
        loads = [Load() for _ in range(connections)]
        await asyncio.gather(*(_connection(port, seconds, keepalive, l) for l in loads))
        total = Load()
        for l in loads:
            total.add(l)
        return total
    return asyncio.run(main())


def run_load(pool: ProcessPoolExecutor, port: int, seconds: float, connections: int,
             keepalive: bool = True) -> Load:
    per_process = max(1, connections // CLIENT_PROCESSES)
    processes = 1 if connections == 1 else CLIENT_PROCESSES
    total = Load()
    for f in [pool.submit(_client_process, port, seconds, per_process, keepalive) for _ in range(processes)]:
        total.add(f.result())
    return total


def settings(prefix: Path) -> NginxSettings:
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    return NginxSettings(http_port=80, https_port=443, tls=None, client_max_body_size_mb=25,
                         health_path="/healthz", proxy_read_timeout_s=600, max_fails=3, fail_timeout_s=10,
                         keepalive=32, pid_path=str(prefix / "nginx.pid"), error_log=str(prefix / "error.log"),
                         access_log=str(prefix / "access.log"), temp_dir=str(prefix / "temp"))


def conf_for(prefix: Path, stubs: list, http_port: int) -> str:
    site = Site("chat", HOST, tuple(Upstream("127.0.0.1", s.port) for s in stubs))
    return loopback_conf(render_nginx_conf(settings(prefix), [site]), {80: http_port, 443: free_port()}, {}, {})


@contextlib.contextmanager
def balancer(workdir: Path, names: list[str]):
    with contextlib.ExitStack() as stack:
        stubs = [stack.enter_context(stub_upstream(n)) for n in names]
        port = free_port()
        nginx = stack.enter_context(nginx_server(conf_for(workdir, stubs, port), workdir / "nginx", port))
        yield nginx, port, stubs


def after(delay_s: float, action) -> threading.Timer:
    timer = threading.Timer(delay_s, action)
    timer.start()
    return timer


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each throughput run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent client connections")
    args = parser.parse_args()
    secs, conns = args.seconds, args.connections
    rows: list[tuple[str, str, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="lb-bench-") as tmp, ProcessPoolExecutor(CLIENT_PROCESSES) as pool:
        work = Path(tmp)
        # Same backend capacity on both sides: one replica, direct or behind nginx.
        with balancer(work / "one", ["r0"]) as (_, lb_port, (stub,)):
            run_load(pool, lb_port, 0.5, 4)  # warm up both paths
            run_load(pool, stub.port, 0.5, 4)
            direct_lat = run_load(pool, stub.port, secs / 2, 1)
            lb_lat = run_load(pool, lb_port, secs / 2, 1)
            direct_tp = run_load(pool, stub.port, secs, conns)
            lb_tp = run_load(pool, lb_port, secs, conns)
        for q in (50, 99):
            d, l = pct(direct_lat.latencies, q), pct(lb_lat.latencies, q)
            rows.append((f"latency p{q} (ms, 1 connection)", f"{d:.3f}", f"{l:.3f}", f"x{l / d:.2f} (+{l - d:.3f} ms)"))
        d, l = direct_tp.ok / secs, lb_tp.ok / secs
        rows.append((f"throughput (req/s, {conns} connections)", f"{d:.0f}", f"{l:.0f}", f"x{l / d:.2f}"))
        rows.append(("failed requests in those runs", str(direct_tp.failed + direct_lat.failed),
                     str(lb_tp.failed + lb_lat.failed), str(lb_tp.errors or "")))

        with balancer(work / "kill", ["r0", "r1", "r2"]) as (_, lb_port, stubs):
            timer = after(secs / 3, stubs[1].kill)
            kill = run_load(pool, lb_port, secs, conns, keepalive=False)
            timer.join()
        rows.append(("kill 1 of 3 replicas: failed / requests", "", f"{kill.failed} / {kill.ok + kill.failed}",
                     f"answered by {dict(sorted(kill.upstreams.items()))} {kill.errors or ''}"))

        with balancer(work / "reload", ["r0", "r1"]) as (nginx, lb_port, stubs), stub_upstream("r-new") as new:
            grown = conf_for(work / "reload", [*stubs, new], lb_port)
            timer = after(secs / 3, lambda: nginx.reload(grown))
            reload = run_load(pool, lb_port, secs, conns, keepalive=False)
            timer.join()
        rows.append(("reload adding a replica: failed / requests", "",
                     f"{reload.failed} / {reload.ok + reload.failed}",
                     f"answered by {dict(sorted(reload.upstreams.items()))} {reload.errors or ''}"))

    print(f"\nnginx {nginx_version()} (worker_processes auto), {os.cpu_count()} CPUs; stub replica: one asyncio "
          f"process; clients: {CLIENT_PROCESSES} asyncio processes; all on 127.0.0.1, {secs:g} s per run\n")
    header = ("", "direct", "via LB", "LB / direct")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def nginx_version() -> str:
    out = subprocess.run([require_binary("nginx"), "-v"], capture_output=True, text=True).stderr
    return out.strip().split("/")[-1]


if __name__ == "__main__":
    main()
