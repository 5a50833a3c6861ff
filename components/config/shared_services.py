"""`sharedServices`: PostgreSQL, Redis, Qdrant, object storage and Ollama, in docker or external mode."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from components.config.types import Host, Image, Invalid, Model, Name, Port, shaped


class Postgres(Model):
    image: Image = "postgres:16.6-bookworm"
    port: Port = 5432
    admin_user: Name = "postgres"


class Redis(Model):
    image: Image = "redis:7.4.1-bookworm"
    port: Port = 6379
    maxclients: Annotated[int, Strict(), Field(ge=100)] = 10000
    pubsub_buffer_mb: Annotated[int, Strict(), Field(ge=8)] = 256


class Qdrant(Model):
    image: Image = "qdrant/qdrant:v1.12.4"
    port: Port = 6333


class ObjectStorage(Model):
    """MinIO holding Open WebUI's uploaded files (S3 API)."""
    image: Image = "minio/minio:RELEASE.2024-11-07T00-52-20Z"
    client_image: Image = "minio/mc:RELEASE.2024-11-17T19-35-25Z"
    port: Port = 9000
    bucket: str = "openwebui-files"
    region: str = "us-east-1"


class Ollama(Model):
    enabled: bool = False
    image: Image = "ollama/ollama:0.5.4"
    port: Port = 11434


class ExternalPostgres(Model):
    host: Host
    port: Port = 5432
    admin_user: str = "postgres"


class ExternalRedis(Model):
    host: Host
    port: Port = 6379


class ExternalQdrant(Model):
    host: Host
    port: Port = 6333


class ExternalObjectStorage(Model):
    endpoint: Annotated[str, shaped(r"https?://[^\s/]+/?", "is not a bare endpoint: give scheme and host only, "
                                     "e.g. https://s3.example.com (the bucket goes in bucket)")]
    bucket: str
    region: str = "us-east-1"


class ExternalServices(Model):
    postgres: ExternalPostgres
    redis: ExternalRedis
    qdrant: ExternalQdrant
    object_storage: ExternalObjectStorage


class SharedServicesSpec(Model):
    """Where PostgreSQL, Redis, Qdrant and object storage live.

    `node` runs them (mode docker) or, for external services, runs the init steps against them.
    """
    node: Name
    mode: Literal["docker", "external"] = "docker"
    postgres: Postgres = Postgres()
    redis: Redis = Redis()
    qdrant: Qdrant = Qdrant()
    object_storage: ObjectStorage = ObjectStorage()
    ollama: Ollama = Ollama()
    external: ExternalServices | None = None

    @model_validator(mode="after")
    def _mode_matches(self) -> SharedServicesSpec:
        if self.mode == "external" and self.external is None:
            raise Invalid("external", "missing, and mode is 'external': add external with postgres, redis, "
                          "qdrant and objectStorage endpoints, or set mode: docker")
        if self.mode == "docker" and self.external is not None:
            raise Invalid("external", "is only read with mode 'external', and mode is 'docker': "
                          "set mode: external or remove external")
        if self.mode == "external" and self.ollama.enabled:
            raise Invalid("ollama.enabled", "true deploys Ollama next to the shared services, which mode "
                          "'external' does not run: remove it and point apps at an Ollama with ollamaUrls")
        return self

    def published_ports(self) -> list[tuple[int, str]]:
        """Host ports this spec publishes on its node, with the key that sets each."""
        if self.mode == "external":
            return []
        ports = [(self.postgres.port, "sharedServices.postgres.port"),
                 (self.redis.port, "sharedServices.redis.port"),
                 (self.qdrant.port, "sharedServices.qdrant.port"),
                 (self.object_storage.port, "sharedServices.objectStorage.port")]
        if self.ollama.enabled:
            ports.append((self.ollama.port, "sharedServices.ollama.port"))
        return ports

