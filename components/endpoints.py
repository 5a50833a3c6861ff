"""Where one container reaches another: pure functions of the fleet model.

On the same node a container is reached by its name on the node's fleet network (its internal
port); from another node, at the node's address and the published port.
"""
from __future__ import annotations

from dataclasses import dataclass

from components.config import Fleet

# Container names on a node; the fleet's docker network resolves them.
POSTGRES, REDIS, QDRANT, OBJECT_STORAGE, OLLAMA = (
    "openwebui-postgres", "openwebui-redis", "openwebui-qdrant", "openwebui-minio", "openwebui-ollama")
OPENWEBUI_PORT = 8080
INTERNAL_PORTS = {POSTGRES: 5432, REDIS: 6379, QDRANT: 6333, OBJECT_STORAGE: 9000, OLLAMA: 11434}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SharedEndpoints:
    """The shared services as one node's containers reach them."""
    postgres: Endpoint
    postgres_admin_user: str
    redis: Endpoint
    qdrant: Endpoint
    object_storage_url: str
    bucket: str
    region: str
    ollama: Endpoint | None


def shared_endpoints(fleet: Fleet, from_node: str | None) -> SharedEndpoints:
    """`from_node=None` means from outside any container (a person, the backup bucket's client)."""
    shared = fleet.shared_services
    if shared.external is not None:
        ext = shared.external
        return SharedEndpoints(
            postgres=Endpoint(ext.postgres.host, ext.postgres.port),
            postgres_admin_user=ext.postgres.admin_user,
            redis=Endpoint(ext.redis.host, ext.redis.port),
            qdrant=Endpoint(ext.qdrant.host, ext.qdrant.port),
            object_storage_url=ext.object_storage.endpoint.rstrip("/"),
            bucket=ext.object_storage.bucket, region=ext.object_storage.region, ollama=None)

    def reach(container: str, published: int) -> Endpoint:
        if from_node == shared.node:
            return Endpoint(container, INTERNAL_PORTS[container])
        return Endpoint(fleet.nodes[shared.node].bind_address, published)

    storage = reach(OBJECT_STORAGE, shared.object_storage.port)
    return SharedEndpoints(
        postgres=reach(POSTGRES, shared.postgres.port),
        postgres_admin_user=shared.postgres.admin_user,
        redis=reach(REDIS, shared.redis.port),
        qdrant=reach(QDRANT, shared.qdrant.port),
        object_storage_url=f"http://{storage}",
        bucket=shared.object_storage.bucket, region=shared.object_storage.region,
        ollama=reach(OLLAMA, shared.ollama.port) if shared.ollama.enabled else None)


@dataclass(frozen=True)
class Replica:
    """One Open WebUI container: app, node and ordinal make its stable name."""
    app: str
    node: str
    ordinal: int
    host_port: int
    migrates: bool

    @property
    def name(self) -> str:
        return f"{self.app}-{self.node}-{self.ordinal}"

    @property
    def container_name(self) -> str:
        return f"openwebui-{self.name}"


def replicas(fleet: Fleet, app: str) -> list[Replica]:
    spec = fleet.apps[app]
    return [Replica(app, node, n, spec.host_port(n), migrates=(node == spec.migrating_node and n == 1))
            for node in sorted(spec.replicas) for n in range(1, spec.replicas[node] + 1)]


def replica_endpoint(fleet: Fleet, replica: Replica, from_node: str | None) -> Endpoint:
    """`from_node=None` means from a node's host (not a container), e.g. a native nginx."""
    if from_node == replica.node:
        return Endpoint(replica.container_name, OPENWEBUI_PORT)
    return Endpoint(fleet.nodes[replica.node].bind_address, replica.host_port)
