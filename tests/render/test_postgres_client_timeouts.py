"""The libpq settings every replica's DATABASE_URL carries, given to the real libpq (psql): accepted by a
live server, and a server that never answers is given up after connect_timeout."""
from __future__ import annotations

import socket
import subprocess

from components.render.postgres import CLIENT_TIMEOUTS, client_timeouts_query
from realservices import postgres_server, require_binary


def test_libpq_accepts_every_setting_and_connects() -> None:
    with postgres_server() as pg:
        url = f"postgresql://{pg.superuser}:{pg.password}@{pg.host}:{pg.port}/postgres?{client_timeouts_query()}"
        done = subprocess.run([require_binary("psql"), "-X", "-At", "-c", "select 1", url],
                              capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr   # libpq refuses unknown keys


def test_a_server_that_never_answers_is_given_up_after_connect_timeout() -> None:
    with socket.socket() as silent:   # the kernel accepts; nothing ever answers the startup packet
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        url = f"postgresql://u:p@127.0.0.1:{silent.getsockname()[1]}/d?{client_timeouts_query()}"
        bound = int(CLIENT_TIMEOUTS["connect_timeout"]) + 20
        done = subprocess.run([require_binary("psql"), "-X", "-c", "select 1", url],
                              capture_output=True, text=True, timeout=bound)   # without it: forever
    assert done.returncode != 0
    assert "timeout" in done.stderr, done.stderr
