"""Load balancer benchmark: the rendered nginx.conf under a real nginx vs the same upstream direct.

    .venv/bin/python benchmarks/lb_bench.py [--seconds 5] [--connections 32]

Clients and upstreams are fast, so the numbers are nginx's: load comes from `wrk` (Debian package
`wrk`), the upstream replica is a second nginx answering a fixed JSON body, all on 127.0.0.1. Rows, each direct vs through the load balancer:
- wrk latency p50/p99 on one keep-alive connection, and throughput with --connections;
- the same through the load balancer's TLS site (the rendered TLS config, a self-signed certificate);
- a streamed answer (a chat completion: 20 chunks 10 ms apart, from a small asyncio upstream):
  time to the first chunk and to the last;
- websocket echo round trips (tests/stub_upstream.py's /ws/socket.io echo);
- failed requests while one of three replicas is killed (SIGKILL) a third into the run, and while
  nginx reloads a config that adds a replica; these runs open a connection per request. Each
  replica's access log stamps every answer, so the rows count what each answered before, while and
  after the kill (or reload); the run stops with an error if the killed replica answered after it was
  gone, or the new one before the reload.
Everything shares the machine's CPUs: compare the columns of one run, not absolute numbers.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from components.config import LoadBalancerSpec  # noqa: E402
from components.load_balancer import edge_settings  # noqa: E402
from components.render.nginx import NginxSettings, Site, Tls, Upstream, render_nginx_conf  # noqa: E402
from realservices import (free_port, loopback_conf, nginx_server, port_open, require_binary,  # noqa: E402
                          running, stub_upstream)

# wrk resolves the URL's host itself and sends it as SNI and Host: localhost is 127.0.0.1 here.
HOST = "localhost"
STREAM_CHUNKS, STREAM_GAP_S = 20, 0.010


# --- upstreams ---------------------------------------------------------------------------------

def upstream_conf(prefix: Path, name: str, port: int, log: bool) -> str:
    temp = "\n".join(f"    {kind}_temp_path {prefix}/temp/{kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""worker_processes auto;  # as many as the load balancer: the same share of the CPUs
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format answered '$msec';  # when each request was answered, in wall-clock seconds
    access_log {f"{prefix}/access.log answered" if log else "off"};
{temp}
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            add_header X-Upstream {name};
            return 200 '{{"upstream": "{name}", "chats": []}}';
        }}
    }}
}}
"""


@dataclass
class FastUpstream:
    name: str
    port: int
    prefix: Path
    proc: subprocess.Popen

    def kill(self) -> None:
        """SIGKILL to the master, then to its workers; return once none runs and the port refuses.

        The master goes first: a master that sees its workers die respawns them before its own SIGKILL
        lands, and the new workers, orphaned, go on answering on the port.
        """
        workers = [int(pid) for pid in
                   Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()]
        self.proc.kill()
        self.proc.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10  # polled finely: the time it returns is the kill's end in the report
        while any(map(_alive, workers)) or port_open(self.port):
            if time.monotonic() > deadline:
                raise TimeoutError(f"replica {self.name} still runs or its port accepts 10 s after SIGKILL")
            time.sleep(0.001)

    def answered(self) -> list[float]:
        """When this replica answered each request (wall-clock seconds, from its access log)."""
        log = self.prefix / "access.log"
        return [float(line) for line in log.read_text().split()] if log.exists() else []


def _alive(pid: int) -> bool:
    """Running or stopped; a zombie (nobody may reap an orphan here) is dead."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in "ZX"
    except FileNotFoundError:
        return False


@contextlib.contextmanager
def fast_upstream(workdir: Path, name: str, log: bool = False) -> Iterator[FastUpstream]:
    prefix, port = workdir / name, free_port()
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    with nginx_server(upstream_conf(prefix, name, port, log), prefix, port) as nginx:
        yield FastUpstream(name, port, prefix, nginx.proc)


async def _serve_stream(port: int) -> None:
    """GET anything: a chunked answer of STREAM_CHUNKS chunks, STREAM_GAP_S apart (tokens of a reply)."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\n")
                for i in range(STREAM_CHUNKS):
                    data = f"data: token {i}\n\n".encode()
                    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    await writer.drain()
                    await asyncio.sleep(STREAM_GAP_S)
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


@contextlib.contextmanager
def stream_upstream() -> Iterator[int]:
    port = free_port()
    with running([sys.executable, __file__, "--serve-stream", str(port)], port):
        yield port


# --- the load balancer ---------------------------------------------------------------------------

def self_signed(directory: Path) -> Tls:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([require_binary("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={HOST}",
                    "-addext", f"subjectAltName=DNS:{HOST}"], check=True, capture_output=True)
    return Tls(str(cert), str(key))


@dataclass
class Balancer:
    nginx: object
    http_port: int
    https_port: int
    prefix: Path
    tls: Tls | None

    def conf(self, ports: list[int]) -> str:
        return lb_conf(self.prefix, ports, self.http_port, self.https_port, self.tls)


def lb_conf(prefix: Path, ports: list[int], http_port: int, https_port: int, tls: Tls | None) -> str:
    (prefix / "temp").mkdir(parents=True, exist_ok=True)
    settings = NginxSettings(
        http_port=80, https_port=443, tls=tls, client_max_body_size_mb=25, health_path="/healthz",
        proxy_read_timeout_s=600, api_read_timeout_s=60, max_fails=3, fail_timeout_s=10, keepalive=32,
        pid_path=str(prefix / "nginx.pid"), error_log=str(prefix / "error.log"),
        access_log=str(prefix / "access.log"), temp_dir=str(prefix / "temp"),
        edge=edge_settings(LoadBalancerSpec(node="lb")))  # the defaults: limits, headers, static cache
    site = Site("chat", HOST, tuple(Upstream("127.0.0.1", p) for p in ports))
    return loopback_conf(render_nginx_conf(settings, [site]), {80: http_port, 443: https_port}, {}, {})


@contextlib.contextmanager
def balancer(prefix: Path, ports: list[int], tls: Tls | None = None) -> Iterator[Balancer]:
    http_port, https_port = free_port(), free_port()
    with nginx_server(lb_conf(prefix, ports, http_port, https_port, tls), prefix, http_port) as nginx:
        yield Balancer(nginx, http_port, https_port, prefix, tls)


# --- clients -------------------------------------------------------------------------------------

@dataclass
class Wrk:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    failed: int        # socket errors + non-2xx/3xx answers


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: float, connections: int, close: bool = False) -> Wrk:
    threads = min(connections, os.cpu_count() or 1)
    argv = [require_binary("wrk"), f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url]
    if close:
        argv[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def latency(pct: str) -> float:
        m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)$", out, re.M)
        return float(m[1]) * _UNITS[m[2]] if m else float("nan")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return Wrk(requests=int(re.search(r"(\d+) requests in", out)[1]),
               per_second=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
               p50_ms=latency("50"), p99_ms=latency("99"),
               failed=(sum(int(g) for g in errors.groups()) if errors else 0) + (int(non_2xx[1]) if non_2xx else 0))


def stream_times(port: int, runs: int) -> tuple[float, float]:
    """Median seconds to the first chunk and to the end of a streamed answer, one connection."""
    first, total = [], []
    request = f"GET /api/chat/completions HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for _ in range(runs):
            start = time.perf_counter()
            sock.sendall(request)
            data = b""
            while b"data: token 0" not in data:
                data += sock.recv(65536)
            first.append(time.perf_counter() - start)
            while not data.endswith(b"0\r\n\r\n"):
                data += sock.recv(65536)
            total.append(time.perf_counter() - start)
    return statistics.median(first), statistics.median(total)


def websocket_round_trips(port: int, messages: int) -> list[float]:
    from websockets.sync.client import connect
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    with connect(f"ws://{HOST}:{port}/ws/socket.io/?EIO=4&transport=websocket", sock=sock) as ws:
        for i in range(messages):
            start = time.perf_counter()
            ws.send(f"42[\"ping\",{i}]")
            ws.recv()
            times.append(time.perf_counter() - start)
    return times


def pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


# --- the runs -----------------------------------------------------------------------------------

@dataclass
class Event:
    """An action taken during a wrk run, in wall-clock seconds (the clock of nginx's $msec)."""
    started: float = float("nan")   # the action began
    done: float = float("nan")      # the action returned: the replica is gone, or the new workers run


def under_load(url: str, seconds: float, connections: int, action) -> tuple[Wrk, float, Event]:
    """wrk for `seconds`, one connection per request; `action` a third into it. Returns wrk's
    result, when wrk started and when the action started and finished."""
    event = Event()

    def act() -> None:
        event.started = time.time()
        action()
        event.done = time.time()
    timer = threading.Timer(seconds / 3, act)
    start = time.time()
    timer.start()
    result = wrk(url, seconds, connections, close=True)
    timer.join()
    if math.isnan(event.done):  # the action raised (its traceback is above)
        raise SystemExit("the action during the wrk run failed")
    return result, start, event


def split(stamps: list[float], event: Event) -> tuple[int, int, int]:
    """Requests answered before the action started, while it ran, and after it returned."""
    before = sum(t < event.started for t in stamps)
    after = sum(t > event.done for t in stamps)
    return before, len(stamps) - before - after, after


def upstream_errors(error_log: Path) -> str:
    """What the load balancer logged about replicas it could not use (each attempt is retried on another
    replica while tries are left; a request out of tries fails and wrk counts it)."""
    text = error_log.read_text() if error_log.exists() else ""
    kinds = {"refused": "(111: Connection refused) while connecting to upstream",
             "reset": "(104: Connection reset by peer)", "closed early": "upstream prematurely closed",
             "no live replica": "no live upstreams"}
    counts = {k: text.count(needle) for k, needle in kinds.items()}
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"


def action_rows(label: str, action: str, run: Wrk, start: float, event: Event, at: str, done: str,
                answered: dict[str, tuple[int, int, int]], which: str, lb: Balancer) -> list[tuple[str, ...]]:
    """The report's rows for a kill or reload run: failures, each replica's answers around the action,
    and what the load balancer logged."""
    return [(f"{label}: failed / requests", "", f"{run.failed} / {run.requests}",
             f"{at} {event.started - start:.2f} s, {done} {(event.done - event.started) * 1000:.0f} ms later"),
            (f"  answered before / while / after {action}", "", "",
             ", ".join(f"{n} {b} / {w} / {a}" for n, (b, w, a) in answered.items()) + f" ({which})"),
            ("  LB's failed attempts on a replica", "", "", upstream_errors(lb.prefix / "error.log"))]


def ratio_row(label: str, direct: float, via: float, fmt: str = "{:.3f}", unit: str = "ms") -> tuple[str, ...]:
    diff = f" ({via - direct:+.3f} {unit})" if unit else ""
    return (label, fmt.format(direct), fmt.format(via), f"x{via / direct:.2f}{diff}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections for throughput")
    parser.add_argument("--serve-stream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_stream:
        asyncio.run(_serve_stream(args.serve_stream))
        return
    secs, conns = args.seconds, args.connections
    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory(prefix="lb-bench-") as tmp:
        work = Path(tmp)
        tls = self_signed(work)
        # Same backend capacity on both sides: one replica, direct or behind nginx.
        with fast_upstream(work, "r0") as up, balancer(work / "lb", [up.port], tls) as lb:
            direct_url = f"http://{HOST}:{up.port}/api/chats"
            lb_url, tls_url = f"http://{HOST}:{lb.http_port}/api/chats", f"https://{HOST}:{lb.https_port}/api/chats"
            for url in (direct_url, lb_url, tls_url):
                wrk(url, 1, 4)  # warm up: connections, TLS sessions, upstream keepalive pool
            # plain http to the LB is redirected to https when TLS is on: a second LB without TLS
            with balancer(work / "lb-plain", [up.port]) as plain:
                lb_url = f"http://{HOST}:{plain.http_port}/api/chats"
                wrk(lb_url, 1, 4)
                one = {k: wrk(u, secs, 1) for k, u in (("direct", direct_url), ("lb", lb_url), ("tls", tls_url))}
                many = {k: wrk(u, secs, conns) for k, u in (("direct", direct_url), ("lb", lb_url), ("tls", tls_url))}
        for q in ("p50", "p99"):
            d = getattr(one["direct"], f"{q}_ms")
            rows.append(ratio_row(f"latency {q} (ms, 1 connection)", d, getattr(one["lb"], f"{q}_ms")))
            rows.append(ratio_row("  same, via LB's TLS site", d, getattr(one["tls"], f"{q}_ms")))
        rows.append(ratio_row(f"throughput (req/s, {conns} connections)", many["direct"].per_second,
                              many["lb"].per_second, "{:.0f}", ""))
        rows.append(ratio_row("  same, via LB's TLS site", many["direct"].per_second, many["tls"].per_second,
                              "{:.0f}", ""))
        rows.append(("failed requests in those runs", str(one["direct"].failed + many["direct"].failed),
                     str(sum(w.failed for k, w in (*one.items(), *many.items()) if k != "direct")), ""))

        with stream_upstream() as port, balancer(work / "lb-stream", [port]) as lb:
            stream_times(lb.http_port, 3)
            (d_first, d_total), (l_first, l_total) = stream_times(port, 25), stream_times(lb.http_port, 25)
        rows.append(ratio_row("streamed answer: first chunk (ms)", d_first * 1000, l_first * 1000))
        rows.append(ratio_row(f"streamed answer: all {STREAM_CHUNKS} chunks (ms)", d_total * 1000, l_total * 1000))

        with stub_upstream("ws") as stub, balancer(work / "lb-ws", [stub.port]) as lb:
            websocket_round_trips(lb.http_port, 50)
            direct_ws, lb_ws = websocket_round_trips(stub.port, 2000), websocket_round_trips(lb.http_port, 2000)
        for q in (50, 99):
            rows.append(ratio_row(f"websocket echo round trip p{q} (ms)", pct(direct_ws, q), pct(lb_ws, q)))

        with contextlib.ExitStack() as stack:
            ups = [stack.enter_context(fast_upstream(work / "kill", f"k{i}", log=True)) for i in range(3)]
            lb = stack.enter_context(balancer(work / "lb-kill", [u.port for u in ups]))
            kill, start, killed = under_load(f"http://{HOST}:{lb.http_port}/api/chats", secs, conns, ups[1].kill)
            answered = {u.name: split(u.answered(), killed) for u in ups}
        if answered["k1"][2]:
            raise SystemExit(f"k1 answered {answered['k1'][2]} requests after it was killed: it was not")
        rows += action_rows("kill 1 of 3 replicas", "the kill", kill, start, killed, "killed at", "gone",
                            answered, "k1 killed", lb)

        with contextlib.ExitStack() as stack:
            ups = [stack.enter_context(fast_upstream(work / "reload", f"r{i}", log=True)) for i in range(3)]
            lb = stack.enter_context(balancer(work / "lb-reload", [u.port for u in ups[:2]]))
            grown = lb.conf([u.port for u in ups])
            reload, start, reloaded = under_load(f"http://{HOST}:{lb.http_port}/api/chats", secs, conns,
                                                 lambda: lb.nginx.reload(grown))
            answered = {u.name: split(u.answered(), reloaded) for u in ups}
        if answered["r2"][0] or not answered["r2"][2]:
            raise SystemExit(f"r2 answered {answered['r2'][0]} requests before the reload and "
                             f"{answered['r2'][2]} after it: the reload did not add it as it should")
        rows += action_rows("reload adding a replica", "the reload", reload, start, reloaded, "reload at",
                            "new workers", answered, "r2 new", lb)

    print(f"\nnginx {nginx_version()} (worker_processes auto), {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}; upstream: nginx (worker_processes auto); clients: wrk, "
          f"{min(conns, os.cpu_count() or 1)} threads; all on 127.0.0.1, {secs:g} s per wrk run\n")
    header = ("", "direct", "via LB", "LB / direct")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def nginx_version() -> str:
    out = subprocess.run([require_binary("nginx"), "-v"], capture_output=True, text=True).stderr
    return out.strip().split("/")[-1]


if __name__ == "__main__":
    main()
