"""How one container reaches another: plain value types and the fleet's container names.

On the same node a container is reached by its name on the node's fleet network (its internal
port); from another node, at the node's address and the published port (see `topology`).
"""
from __future__ import annotations

from dataclasses import dataclass

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
    tls: bool = False                # sharedServices.tls: every service but Ollama speaks TLS only

    @property
    def qdrant_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.qdrant}"
