"""Bounded load: a few users doing authenticated GETs through the LB until stopped, recording every failure."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import requests


@dataclass
class LoadResult:
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    failure_times: list[float] = field(default_factory=list)  # monotonic start of each failed request
    latencies: list[float] = field(default_factory=list)   # seconds, in order
    times: list[float] = field(default_factory=list)       # monotonic start of each request


class Load:
    """`workers` clients, each one request at a time, at most `max_requests` in all and `max_seconds` long."""

    def __init__(self, url: str, token: str, path: str = "/api/v1/auths/", workers: int = 2,
                 max_requests: int = 20000, max_seconds: float = 300, timeout: float = 30) -> None:
        self.url, self.token, self.path = url, token, path
        self.workers, self.max_requests, self.max_seconds, self.timeout = workers, max_requests, max_seconds, timeout
        self.result = LoadResult()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self.max_seconds
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(self.workers)]
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> LoadResult:
        self._stop.set()
        for t in self._threads:
            t.join()
        return self.result

    def count(self) -> int:
        with self._lock:
            return self.result.ok + len(self.result.failures)

    def _run(self) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                if self.result.ok + len(self.result.failures) >= self.max_requests:
                    return
            start = time.monotonic()
            try:
                r = session.get(self.url + self.path, timeout=self.timeout)
                failure = None if r.status_code == 200 else f"HTTP {r.status_code}: {r.text[:100]}"
            except requests.RequestException as e:
                failure = f"{type(e).__name__}: {e}"[:200]
            elapsed = time.monotonic() - start
            with self._lock:
                self.result.times.append(start)
                self.result.latencies.append(elapsed)
                if failure is None:
                    self.result.ok += 1
                else:
                    self.result.failures.append(failure)
                    self.result.failure_times.append(start)
