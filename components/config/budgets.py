"""Connection and capacity budgets, checked before any resource is declared.

- PostgreSQL: every replica may open two pools (Open WebUI's sync and async engines,
  open_webui/internal/db.py), each up to pool size + max overflow; the jobs add theirs. All of it
  must fit max_connections minus the reserved slots.
- Redis: replicas × the app's redisConnectionsPerReplica against maxclients (Open WebUI does not cap
  its Redis pools, so this is the estimate the operator sets).
- Nodes: the memory and CPU limits of the containers placed on a node against what the node declares.
Each rule gives one message naming the key to change, the numbers and the fix.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Connections each scheduled job may hold at once (a restore: pg_restore and its admin connection).
JOB_CONNECTIONS: dict[str, int] = {"backup job": 2}


@dataclass(frozen=True)
class AppLoad:
    """What one app's replicas ask of the shared services and of their nodes."""
    name: str
    replicas: Mapping[str, int]       # node → replicas there
    db_connections_per_replica: int   # 2 × (pool size + max overflow)
    pool_size: int
    max_overflow: int
    redis_connections_per_replica: int
    memory_mb: int
    cpus: float

    @property
    def replica_count(self) -> int:
        return sum(self.replicas.values())


class BudgetError(ValueError):
    """A budget broken at `key` (dotted, from the config's root)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def check_postgres(apps: list[AppLoad], max_connections: int, reserved: int, jobs: Mapping[str, int],
                   key: str = "sharedServices.postgres.settings.max_connections") -> None:
    available = max_connections - reserved
    parts = [f"{a.name} {a.replica_count} × 2 × ({a.pool_size} + {a.max_overflow})" for a in apps]
    parts += [f"{job} {n}" for job, n in sorted(jobs.items())]
    needed = sum(a.replica_count * a.db_connections_per_replica for a in apps) + sum(jobs.values())
    if needed > available:
        raise BudgetError(key, f"{max_connections} leaves {available} connections ({reserved} reserved), but "
                          f"the apps and jobs may open {needed} ({' + '.join(parts)}; each replica has two "
                          f"pools of databasePool.size + maxOverflow): raise max_connections to at least "
                          f"{needed + reserved}, or lower apps.<app>.databasePool")


def check_redis(apps: list[AppLoad], maxclients: int, key: str = "sharedServices.redis.maxclients") -> None:
    needed = sum(a.replica_count * a.redis_connections_per_replica for a in apps)
    if needed > maxclients:
        parts = " + ".join(f"{a.name} {a.replica_count} × {a.redis_connections_per_replica}" for a in apps)
        raise BudgetError(key, f"{maxclients} is less than the {needed} connections the replicas may open "
                          f"({parts}, replicas × redisConnectionsPerReplica): raise maxclients to at least "
                          f"{needed}, or lower apps.<app>.redisConnectionsPerReplica")


def check_node(node: str, memory_mb: int | None, cpus: float | None, apps: list[AppLoad]) -> None:
    placed = [(a, a.replicas[node]) for a in apps if a.replicas.get(node)]
    if memory_mb is not None:
        needed = sum(a.memory_mb * n for a, n in placed)
        if needed > memory_mb:
            parts = " + ".join(f"{a.name} {n} × {a.memory_mb} MB" for a, n in placed)
            raise BudgetError(f"nodes.{node}.memoryMb", f"{memory_mb} is less than the {needed} MB of memory "
                              f"limits of the replicas placed on it ({parts}): raise it, lower "
                              "apps.<app>.memoryMb, or place fewer replicas on this node")
    if cpus is not None:
        needed_cpus = sum(a.cpus * n for a, n in placed)
        if needed_cpus > cpus + 1e-9:
            parts = " + ".join(f"{a.name} {n} × {a.cpus:g}" for a, n in placed)
            raise BudgetError(f"nodes.{node}.cpus", f"{cpus:g} is less than the {needed_cpus:g} CPUs of the "
                              f"replicas placed on it ({parts}): raise it, lower apps.<app>.cpus, or place "
                              "fewer replicas on this node")
