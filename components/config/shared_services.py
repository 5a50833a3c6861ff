"""`sharedServices`: PostgreSQL, Redis, Qdrant, object storage and Ollama, in docker or external mode."""

from typing import Annotated, Literal, Self

from pydantic import Field, Strict, model_validator

from components.config.postgres_settings import check_setting
from components.config.types import BucketName, Host, Image, Invalid, Model, Name, PgUser, Port, Region, endpoint, shaped


class Postgres(Model):
    image: Image = "postgres:16.6-bookworm"
    port: Port = 5432
    admin_user: Name = "postgres"
    # Server settings, passed as `-c name=value`; names and value shapes from an allow-list.
    settings: dict[str, str] = {}

    @model_validator(mode="after")
    def _allowed_settings(self) -> Self:
        for name, value in self.settings.items():
            problem = check_setting(name, value)
            if problem is not None:
                raise Invalid(f"settings.{name}", problem)
        return self


class Redis(Model):
    image: Image = "redis:7.4.1-bookworm"
    port: Port = 6379
    maxclients: Annotated[int, Strict(), Field(ge=100)] = 10000
    pubsub_buffer_mb: Annotated[int, Strict(), Field(ge=8)] = 256
    # Seconds before Redis closes an idle client; 0 (never) lets dead clients pile up to maxclients.
    timeout: Annotated[int, Strict(), Field(ge=60)] = 1800
    tcp_keepalive: Annotated[int, Strict(), Field(ge=10)] = 60
    maxmemory_mb: Annotated[int, Strict(), Field(ge=64)] | None = None


class Qdrant(Model):
    image: Image = "qdrant/qdrant:v1.12.4"
    port: Port = 6333


class ObjectStorage(Model):
    """MinIO holding Open WebUI's uploaded files (S3 API)."""
    image: Image = "minio/minio:RELEASE.2024-11-07T00-52-20Z"
    client_image: Image = "minio/mc:RELEASE.2024-11-17T19-35-25Z"
    port: Port = 9000
    bucket: BucketName = "openwebui-files"
    region: Region = "us-east-1"


class Ollama(Model):
    enabled: bool = False
    image: Image = "ollama/ollama:0.5.4"
    port: Port = 11434


class ExternalPostgres(Model):
    host: Host
    port: Port = 5432
    admin_user: PgUser = "postgres"


class ExternalRedis(Model):
    host: Host
    port: Port = 6379


class ExternalQdrant(Model):
    host: Host
    port: Port = 6333


class ExternalObjectStorage(Model):
    endpoint: Annotated[str, endpoint("is not a bare endpoint: give scheme and host only, "
                                      "e.g. https://s3.example.com (the bucket goes in bucket)")]
    bucket: BucketName
    region: Region = "us-east-1"


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
    # TLS between nodes: a fleet CA (pulumi-tls) signs each service's certificate; the services refuse
    # clear text and every client verifies the server's name against the CA.
    tls: Annotated[bool, Strict()] = False

    @model_validator(mode="after")
    def _mode_matches(self) -> Self:
        if self.mode == "external" and self.external is None:
            raise Invalid("external", "missing, and mode is 'external': add external with postgres, redis, "
                          "qdrant and objectStorage endpoints, or set mode: docker")
        if self.mode == "docker" and self.external is not None:
            raise Invalid("external", "is only read with mode 'external', and mode is 'docker': "
                          "set mode: external or remove external")
        if self.mode == "external" and self.tls:
            raise Invalid("tls", "true makes the services this program runs TLS-only, and mode 'external' runs "
                          "none: remove tls (external services' TLS is set up where they run), or set mode: docker")
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

