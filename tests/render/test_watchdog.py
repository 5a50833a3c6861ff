"""The replicas' healthcheck run by sh against a real HTTP server: it answers like a plain check, and a
replica that answered once and then stops answering is killed at the Nth consecutive failure.

The kill of every process but the container's init (`kill -KILL -1`) would reach the whole machine
here: the test kills a stand-in process group instead, whose leader stands in for the init (its start
time tells one container start from the next), as the realfleet runner does.
"""
from __future__ import annotations

import http.server
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from components.render import watchdog
from components.render.watchdog import INIT_STAT, KILL_ALL_BUT_INIT, watchdog_healthcheck
from realservices import require_binary, wait_until

FAILURES = 3


class Replica(http.server.ThreadingHTTPServer):
    """/health answers 200 while `answering` is set; otherwise it holds the request (a frozen event loop)."""

    def __init__(self) -> None:
        self.answering = threading.Event()
        self.released = threading.Event()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(inner) -> None:  # noqa: N802
                if not self.answering.is_set():
                    self.released.wait(30)
                    return
                inner.send_response(200)
                inner.end_headers()
                inner.wfile.write(b'{"status":true}')

            def log_message(inner, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True


@pytest.fixture
def replica() -> Iterator[Replica]:
    server = Replica()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.released.set()
        server.shutdown()
        server.server_close()


def start_app() -> subprocess.Popen[bytes]:
    """Stands in for the container's processes (its own process group)."""
    return subprocess.Popen(["sleep", "300"], start_new_session=True)


@pytest.fixture
def app_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = start_app()
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def check(replica: Replica, app: subprocess.Popen[bytes], state: Path) -> int:
    test = watchdog_healthcheck(f"http://127.0.0.1:{replica.server_address[1]}/health", FAILURES, 1)
    assert KILL_ALL_BUT_INIT in test
    test = test.replace(KILL_ALL_BUT_INIT, f"kill -KILL -{app.pid}").replace(INIT_STAT, f"/proc/{app.pid}/stat")
    test = test.replace(watchdog.FAILURES_FILE, str(state))
    return subprocess.run(["sh", "-c", test], capture_output=True, timeout=10).returncode


def test_a_replica_that_answers_is_healthy_and_left_alone(replica, app_process, tmp_path) -> None:
    require_binary("curl")
    replica.answering.set()
    assert [check(replica, app_process, tmp_path / "f") for _ in range(FAILURES + 2)] == [0] * (FAILURES + 2)
    assert app_process.poll() is None


def test_a_starting_replica_is_never_killed(replica, app_process, tmp_path) -> None:
    """Until it has answered once, failures are the start period's business (migrations take minutes)."""
    require_binary("curl")
    assert [check(replica, app_process, tmp_path / "f") for _ in range(FAILURES + 2)] == [1] * (FAILURES + 2)
    assert app_process.poll() is None


def test_a_replica_that_stops_answering_is_killed_at_the_nth_failure_in_a_row(replica, app_process,
                                                                              tmp_path) -> None:
    require_binary("curl")
    state = tmp_path / "f"
    replica.answering.set()
    assert check(replica, app_process, state) == 0
    replica.answering.clear()
    assert [check(replica, app_process, state) for _ in range(FAILURES - 1)] == [1] * (FAILURES - 1)
    replica.answering.set()   # one answer resets the count
    assert check(replica, app_process, state) == 0
    replica.answering.clear()
    for _ in range(FAILURES - 1):
        assert check(replica, app_process, state) == 1
        assert app_process.poll() is None
    assert check(replica, app_process, state) == 1
    wait_until(lambda: app_process.poll() is not None, 10, "the replica's processes killed")
    assert app_process.returncode == -signal.SIGKILL


def test_a_restarted_replica_is_not_killed_while_it_starts_again(replica, app_process, tmp_path) -> None:
    """The count outlives a restart (the container's /tmp does): it must not carry over."""
    require_binary("curl")
    state = tmp_path / "f"
    replica.answering.set()
    assert check(replica, app_process, state) == 0
    replica.answering.clear()
    assert check(replica, app_process, state) == 1
    app_process.kill()
    app_process.wait()
    restarted = start_app()
    try:
        assert [check(replica, restarted, state) for _ in range(FAILURES + 2)] == [1] * (FAILURES + 2)
        assert restarted.poll() is None
        replica.answering.set()
        assert check(replica, restarted, state) == 0
    finally:
        restarted.kill()
        restarted.wait()
