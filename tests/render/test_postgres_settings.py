"""PostgreSQL settings from the stack: checked against the allow-list, rendered as `-c name=value`,
and read back from a real server with SHOW."""
from __future__ import annotations

import pytest

from components.config.postgres_settings import check_setting, connection_limit, effective_settings
from components.render.postgres import postgres_server_command
from realservices import postgres_server, psql


def test_settings_render_as_sorted_dash_c_pairs_after_the_server_binary() -> None:
    assert postgres_server_command({"work_mem": "8MB", "max_connections": "150"}) == [
        "postgres", "-c", "max_connections=150", "-c", "work_mem=8MB"]


def test_sizes_come_from_the_nodes_memory_and_the_stack_wins() -> None:
    # 8 GB node: PostgreSQL counts on 4 GB, a quarter of it as shared buffers.
    assert effective_settings({}, 8192) == {"max_connections": "500", "shared_buffers": "1024MB",
                                            "effective_cache_size": "3072MB", "maintenance_work_mem": "256MB"}
    assert effective_settings({"shared_buffers": "512MB"}, 8192)["shared_buffers"] == "512MB"
    assert effective_settings({}, None) == {"max_connections": "500"}


@pytest.mark.parametrize(("name", "value", "message"), [
    ("fsync", "off", "'fsync' is not a setting the fleet passes to PostgreSQL: use one of autovacuum_max_workers"),
    ("shared_buffers", "1024", "'1024' is not a valid value for shared_buffers: give e.g. 1GB"),
    ("shared_buffers", "1 GB", "'1 GB' is not a valid value for shared_buffers: give e.g. 1GB"),
    ("max_connections", "5", "5 is out of range for max_connections: give 20 to 10000"),
    ("jit", "false", "'false' is not a valid value for jit: give e.g. off"),
    ("statement_timeout", "10", "'10' is not a valid value for statement_timeout: give e.g. 0"),
])
def test_a_setting_outside_the_allow_list_or_its_shape_is_refused(name: str, value: str, message: str) -> None:
    problem = check_setting(name, value)
    assert problem is not None and problem.startswith(message)


def test_connection_limit_subtracts_the_reserved_slots() -> None:
    assert connection_limit({"max_connections": "200"}) == 197
    assert connection_limit({"max_connections": "200", "superuser_reserved_connections": "5",
                             "reserved_connections": "10"}) == 185


def test_a_real_postgresql_runs_with_the_rendered_settings() -> None:
    settings = effective_settings({"work_mem": "8MB", "idle_in_transaction_session_timeout": "10min",
                                   "log_min_duration_statement": "500ms", "jit": "off",
                                   "random_page_cost": "1.1", "max_connections": "150"}, 4096)
    for name, value in settings.items():
        assert check_setting(name, value) is None
    command = postgres_server_command(settings)
    assert command[0] == "postgres"
    with postgres_server(command[1:]) as pg:
        shown = {name: psql(pg, "-tA", "-c", f"SHOW {name}").stdout.strip() for name in settings}
    # Expected as PostgreSQL prints them (4 GB node: 2 GB for PostgreSQL).
    assert shown == {"max_connections": "150", "shared_buffers": "512MB", "effective_cache_size": "1536MB",
                     "maintenance_work_mem": "128MB", "work_mem": "8MB",
                     "idle_in_transaction_session_timeout": "10min", "log_min_duration_statement": "500ms",
                     "jit": "off", "random_page_cost": "1.1"}


def test_every_allowed_setting_is_one_postgresql_accepts_with_its_example_value() -> None:
    from components.config.postgres_settings import ALLOWED
    examples = {name: shape.example for name, shape in ALLOWED.items()
                if name != "reserved_connections"}  # PostgreSQL 16+; this machine runs 15
    assert {n: check_setting(n, v) for n, v in examples.items()} == {n: None for n in examples}
    with postgres_server(postgres_server_command(examples)[1:]) as pg:
        rows = psql(pg, "-tA", "-F", "=", "-c",
                    "SELECT name, setting FROM pg_settings WHERE source = 'command line'").stdout.split()
    assert set(examples) <= {row.split("=", 1)[0] for row in rows}
