"""A TCP proxy on loopback that makes a local server look remote: every byte towards it arrives late.

    .venv/bin/python benchmarks/latency_proxy.py --to 127.0.0.1:9000 --delay-ms 5   # prints "port N"

This kernel has no `sch_netem`, so `tc qdisc ... netem delay` cannot add latency; this does the same
in user space. Bytes a client sends reach the upstream `--delay-ms` after they reached the proxy, each
chunk at its own arrival time + delay and in order, so requests in flight on other connections (or
pipelined on one) overlap as on a real link; a new connection also waits the delay before it is opened
upstream, as its SYN would. Answers come back undelayed. So each request (and each new connection)
takes `--delay-ms` longer than direct: one way, towards the server, as netem on the link to it does.
Started by benchmarks/backup_bench.py (`--latency-ms`); it stops when stdin closes or on SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import sys


async def _delayed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy reader → writer, each chunk `delay` seconds after it arrived, in order."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def send() -> None:
        while True:
            due, data = await queue.get()
            if (wait := due - loop.time()) > 0:
                await asyncio.sleep(wait)
            if not data:
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while data := await reader.read(65536):
            queue.put_nowait((loop.time() + delay, data))
    finally:
        queue.put_nowait((loop.time() + delay, b""))
        await sender


async def _direct(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


async def _connection(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter, host: str, port: int,
                      delay: float) -> None:
    await asyncio.sleep(delay)  # the connection's first packet takes the delay too
    try:
        server_r, server_w = await asyncio.open_connection(host, port)
    except OSError:
        client_w.close()
        return
    tasks = [asyncio.create_task(_delayed(client_r, server_w, delay)),
             asyncio.create_task(_direct(server_r, client_w))]
    try:
        _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the proxy is stopping
        pending = set(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)  # a reset connection ends its pair, quietly
    for w in (server_w, client_w):
        w.close()


async def serve(host: str, port: int, delay: float) -> None:
    server = await asyncio.start_server(lambda r, w: _connection(r, w, host, port, delay), "127.0.0.1", 0)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    loop = asyncio.get_running_loop()
    # Stop when the parent closes our stdin (it exited or is done with us).
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", required=True, help="upstream HOST:PORT (loopback)")
    parser.add_argument("--delay-ms", type=float, required=True)
    args = parser.parse_args()
    host, _, port = args.to.rpartition(":")
    asyncio.run(serve(host, int(port), args.delay_ms / 1000))
    return 0


if __name__ == "__main__":
    sys.exit(main())
