"""PostgreSQL server settings the stack may set (`sharedServices.postgres.settings`), and the sizes
derived from the shared node's memory. Each is passed to the server as `-c name=value`."""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Shape:
    pattern: str
    example: str
    low: int | None = None   # for plain integers
    high: int | None = None


_INT = r"-?\d+"
_MEM = r"\d+(kB|MB|GB|TB)"
_DURATION = r"(0|-1|\d+(ms|s|min|h|d))"
_FLOAT = r"\d+(\.\d+)?"
_BOOL = r"on|off"

# The parameters an operator tunes on a shared PostgreSQL, with the value shape each accepts.
# Sizes need a unit (a bare number means pages for some and kB for others).
ALLOWED: dict[str, Shape] = {
    "max_connections": Shape(_INT, "200", 20, 10000),
    "superuser_reserved_connections": Shape(_INT, "3", 0, 100),
    "reserved_connections": Shape(_INT, "0", 0, 100),  # PostgreSQL 16+
    "shared_buffers": Shape(_MEM, "1GB"),
    "effective_cache_size": Shape(_MEM, "3GB"),
    "maintenance_work_mem": Shape(_MEM, "256MB"),
    "work_mem": Shape(_MEM, "8MB"),
    "wal_buffers": Shape(_MEM, "16MB"),
    "min_wal_size": Shape(_MEM, "1GB"),
    "max_wal_size": Shape(_MEM, "4GB"),
    "checkpoint_completion_target": Shape(_FLOAT, "0.9"),
    "checkpoint_timeout": Shape(_DURATION, "15min"),
    "random_page_cost": Shape(_FLOAT, "1.1"),
    "effective_io_concurrency": Shape(_INT, "200", 0, 1000),
    "default_statistics_target": Shape(_INT, "100", 1, 10000),
    "max_worker_processes": Shape(_INT, "8", 0, 256),
    "max_parallel_workers": Shape(_INT, "8", 0, 256),
    "max_parallel_workers_per_gather": Shape(_INT, "2", 0, 256),
    "max_parallel_maintenance_workers": Shape(_INT, "2", 0, 256),
    "autovacuum_max_workers": Shape(_INT, "3", 1, 64),
    "autovacuum_naptime": Shape(_DURATION, "1min"),
    "idle_in_transaction_session_timeout": Shape(_DURATION, "10min"),
    "idle_session_timeout": Shape(_DURATION, "0"),
    "statement_timeout": Shape(_DURATION, "0"),
    "lock_timeout": Shape(_DURATION, "0"),
    "tcp_keepalives_idle": Shape(_DURATION, "60s"),
    "log_min_duration_statement": Shape(_DURATION, "500ms"),
    "log_connections": Shape(_BOOL, "on"),
    "log_disconnections": Shape(_BOOL, "on"),
    "log_lock_waits": Shape(_BOOL, "on"),
    "jit": Shape(_BOOL, "off"),
    "huge_pages": Shape(r"try|on|off", "try"),
}

# What the fleet's PostgreSQL runs with when the stack says nothing: room for twelve replicas'
# two pools at the default pool sizes (components/config/budgets.py); PostgreSQL's own 100 fits two.
DEFAULT_SETTINGS: dict[str, str] = {"max_connections": "500"}
SUPERUSER_RESERVED_DEFAULT = 3
RESERVED_DEFAULT = 0


def check_setting(name: str, value: str) -> str | None:
    """None if `name=value` may be passed to PostgreSQL, else what is wrong and how to fix it."""
    shape = ALLOWED.get(name)
    if shape is None:
        return (f"'{name}' is not a setting the fleet passes to PostgreSQL: use one of "
                f"{', '.join(sorted(ALLOWED))}")
    if not re.fullmatch(shape.pattern, value):
        return f"'{value}' is not a valid value for {name}: give e.g. {shape.example}"
    if shape.low is not None and shape.high is not None and not shape.low <= int(value) <= shape.high:
        return f"{value} is out of range for {name}: give {shape.low} to {shape.high}"
    return None


def memory_settings(node_memory_mb: int) -> dict[str, str]:
    """Sizes for a PostgreSQL that shares its node with Redis, Qdrant and MinIO: it counts on half
    the node's memory, a quarter of that as shared buffers (the usual starting point)."""
    share = node_memory_mb // 2
    return {
        "shared_buffers": f"{share // 4}MB",
        "effective_cache_size": f"{share * 3 // 4}MB",
        "maintenance_work_mem": f"{min(max(share // 16, 64), 2048)}MB",
    }


def effective_settings(given: dict[str, str], node_memory_mb: int | None) -> dict[str, str]:
    """The settings PostgreSQL runs with: defaults, then memory-derived sizes, then the stack's own."""
    derived = memory_settings(node_memory_mb) if node_memory_mb is not None else {}
    return {**DEFAULT_SETTINGS, **derived, **given}


def connection_limit(settings: dict[str, str]) -> int:
    """Connections open to ordinary roles: max_connections minus the reserved slots."""
    return (int(settings["max_connections"])
            - int(settings.get("superuser_reserved_connections", SUPERUSER_RESERVED_DEFAULT))
            - int(settings.get("reserved_connections", RESERVED_DEFAULT)))
