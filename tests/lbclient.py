"""HTTP clients for load-balancer tests: one request, or a bounded run of many."""
from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


def request(port: int, host: str, path: str = "/", method: str = "GET", body: bytes | None = None,
            headers: dict[str, str] | None = None, tls: bool = False) -> Reply:
    """One request on a fresh connection to 127.0.0.1:port with the given Host (and SNI with tls)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    if tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed test cert
        conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=20),
                                        server_hostname=host)
    try:
        conn.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def hammer(port: int, host: str, total: int, deadline_s: float,
           at: dict[int, Callable[[], None]] | None = None, workers: int = 8,
           after_hooks: int = 100, until: Callable[[Counter], bool] | None = None) -> tuple[Counter, list[str]]:
    """At least `total` GETs from `workers` threads, bounded by a deadline; `at[n]` runs before
    request n while the other threads keep sending, and `after_hooks` more requests are sent after
    the last hook has returned (so what a hook changed is exercised however long it took). With
    `until`, sending goes on (within the deadline) until it holds for the answers so far.

    Returns which upstream answered how often, and every failure (non-200 or exception).
    """
    lock, issued = threading.Lock(), [0]  # issued[0]: the number the next request gets
    answered: Counter = Counter()
    failures: list[str] = []
    deadline = time.monotonic() + deadline_s
    pending = set(at or {})
    hooks_done_at: list[int] = [] if pending else [-after_hooks]

    def worker() -> None:
        while time.monotonic() < deadline:
            with lock:
                n, issued[0] = issued[0], issued[0] + 1
                done = (len(hooks_done_at) == 1 and n >= max(total, hooks_done_at[0] + after_hooks)
                        and (until is None or until(answered)))
            if done:
                return
            if at and n in at:
                at[n]()
                with lock:
                    pending.discard(n)
                    if not pending:  # numbered from here on, a request is sent after the hook returned
                        hooks_done_at.append(issued[0])
            try:
                reply = request(port, host, f"/api/chats?n={n}")
                if reply.status != 200:
                    failures.append(f"#{n}: HTTP {reply.status}")
                else:
                    answered[reply.headers["x-upstream"]] += 1
            except (OSError, http.client.HTTPException) as e:
                failures.append(f"#{n}: {e!r}")

    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(worker) for _ in range(workers)]:
            f.result()
    return answered, failures
