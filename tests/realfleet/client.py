"""A user's client of the running fleet: the apps' hostnames resolve to the LB, as public DNS would make them.

The names resolve inside this process only (socket.getaddrinfo), so requests and python-socketio send the
real `Host` and `Origin` an app's users send, without touching the machine's /etc/hosts.
"""
from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import socketio

_names: dict[str, str] = {}
_original_getaddrinfo = socket.getaddrinfo


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    return _original_getaddrinfo(_names.get(host, host), *args, **kwargs)


@contextlib.contextmanager
def resolving(names: dict[str, str]) -> Iterator[None]:
    """`names` (hostname → address) resolve in this process until the block ends."""
    _names.update(names)
    socket.getaddrinfo = _getaddrinfo
    try:
        yield
    finally:
        socket.getaddrinfo = _original_getaddrinfo
        for name in names:
            _names.pop(name, None)


def load_fleet(state: Path) -> dict[str, Any]:
    return json.loads((state / "fleet.json").read_text())


@dataclass
class Api:
    """Open WebUI's HTTP API at one base URL (the app's public URL, or one replica), as one user."""

    base: str
    token: str | None = None
    timeout: float = 30

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **kw: Any) -> requests.Response:
        return requests.get(self.base + path, headers=self._headers(), timeout=self.timeout, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return requests.post(self.base + path, headers=self._headers(), timeout=self.timeout, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return requests.delete(self.base + path, headers=self._headers(), timeout=self.timeout, **kw)

    def signin(self, email: str, password: str) -> dict[str, Any]:
        r = self.post("/api/v1/auths/signin", json={"email": email, "password": password})
        r.raise_for_status()
        self.token = r.json()["token"]
        return r.json()

    def as_user(self, base: str) -> Api:
        """The same user (token) at another base URL, e.g. one replica directly."""
        return Api(base, self.token, self.timeout)


def replica_urls(fleet: dict[str, Any], app: str) -> dict[str, str]:
    """Each replica of `app` directly, at its node's address and published port (not through the LB)."""
    return {r["resource"]: f"http://{r['address']}:{r['port']}" for r in fleet["apps"][app]["replicas"]}


@dataclass
class Events:
    """Every socket.io event a client received, with a way to wait for one."""

    seen: list[tuple[str, Any]] = field(default_factory=list)
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def add(self, event: str, data: Any) -> None:
        with self._changed:
            self.seen.append((event, data))
            self._changed.notify_all()

    def wait_for(self, predicate: Any, timeout: float) -> tuple[str, Any] | None:
        with self._changed:
            found: list[tuple[str, Any]] = []

            def match() -> bool:
                found[:] = [e for e in self.seen if predicate(*e)]
                return bool(found)
            self._changed.wait_for(match, timeout)
            return found[0] if found else None


def socket_client(url: str, token: str) -> tuple[socketio.Client, Events]:
    """A python-socketio client at `url`/ws/socket.io, signed in with `token`, recording every event."""
    events = Events()
    client = socketio.Client(reconnection=True, reconnection_delay=0.5, reconnection_delay_max=2)
    client.on("*", lambda event, data=None: events.add(event, data))
    client.on("connect", lambda: events.add("__connect__", None))
    client.connect(url, socketio_path="/ws/socket.io", transports=["websocket"], auth={"token": token},
                   wait_timeout=20)
    return client, events


def log_records(path: str | Path) -> list[tuple[str, str]]:
    """(caller, message) of each line of an Open WebUI log: the plan sets LOG_FORMAT=json, one object a line;
    a line that is not JSON (a crash's traceback) counts as a message of no caller."""
    records = []
    for line in Path(path).read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            records.append(("", line))
            continue
        if isinstance(record, dict):
            records.append((str(record.get("caller", "")), str(record.get("msg", ""))))
    return records
