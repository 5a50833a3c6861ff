"""PostgreSQL, Redis, Qdrant, MinIO (and optionally Ollama) on one node, or external ones."""
from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.config import Secrets, SharedServicesSpec
from components.containers import STATEFUL, env_list, healthcheck
from components.endpoints import INTERNAL_PORTS, OBJECT_STORAGE, OLLAMA, POSTGRES, QDRANT, REDIS
from components.node import FleetNode
from components.render.redis import redis_server_command
from components.secrets import generated_secret


class SharedServices(pulumi.ComponentResource):
    """The services every app's replicas share, with their credentials as secret attributes."""

    def __init__(self, name: str, spec: SharedServicesSpec, node: FleetNode, secrets: Secrets,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:SharedServices", name, None, opts)
        self._name, self._spec, self._node = name, spec, node
        # The image whose psql bootstraps each app's database (any node may run it).
        self.postgres_image: str = spec.postgres.image
        self.postgres_password = self._secret("postgres-password", secrets.get("postgresPassword"))
        self.redis_password = self._secret("redis-password", secrets.get("redisPassword"))
        self.qdrant_api_key = self._secret("qdrant-api-key", secrets.get("qdrantApiKey"))
        self.s3_access_key = self._secret("object-storage-access-key", secrets.get("objectStorageAccessKey"), 20)
        self.s3_secret_key = self._secret("object-storage-secret-key", secrets.get("objectStorageSecretKey"), 40)
        # What apps wait for before they start: the services, once healthy.
        self.ready: list[pulumi.Resource] = []
        if spec.mode == "docker":
            self._deploy()
        self.register_outputs({})

    def _child_name(self, key: str) -> tuple[str, list[pulumi.Alias]]:
        """`<component>-<key>`; children were once named `<key>` alone, an alias keeps their URNs."""
        return f"{self._name}-{key}", [pulumi.Alias(name=key)]

    def _secret(self, key: str, given: pulumi.Output[str] | None, length: int = 32) -> pulumi.Output[str]:
        return generated_secret(f"{self._name}-{key}", given, self, length=length, renamed_from=key)

    def _service(self, container: str, image: str, published: int, *, envs: pulumi.Input[list[str]],
                 data_path: str | None, health: docker.ContainerHealthcheckArgs,
                 command: list[str] | None = None) -> docker.Container:
        key = container.removeprefix("openwebui-")
        volumes = []
        if data_path is not None:
            volume_name, aliases = self._child_name(f"{key}-data")
            volume = docker.Volume(volume_name, name=f"{container}-data",
                                   opts=self._node.child_opts(self, aliases=aliases, **STATEFUL))
            volumes = [docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path)]
        service_name, aliases = self._child_name(key)
        service = docker.Container(
            service_name, name=container, image=self._node.image(image).image_id, command=command, envs=envs,
            ports=[docker.ContainerPortArgs(internal=INTERNAL_PORTS[container], external=published,
                                            ip=self._node.address)],
            volumes=volumes, networks_advanced=self._node.networks, healthcheck=health,
            restart="unless-stopped", wait=True, wait_timeout=180,
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value=key)],
            opts=self._node.child_opts(self, aliases=aliases))
        self.ready.append(service)
        return service

    def _deploy(self) -> None:
        spec = self._spec
        self._service(POSTGRES, spec.postgres.image, spec.postgres.port,
                      envs=env_list({"POSTGRES_USER": spec.postgres.admin_user},
                                    {"POSTGRES_PASSWORD": self.postgres_password}),
                      data_path="/var/lib/postgresql/data",
                      health=healthcheck('pg_isready -q -U "$POSTGRES_USER" -d postgres'))
        self._service(REDIS, spec.redis.image, spec.redis.port,
                      envs=env_list({}, {"REDIS_PASSWORD": self.redis_password,
                                         "REDISCLI_AUTH": self.redis_password}),
                      command=redis_server_command(spec.redis), data_path="/data",
                      health=healthcheck("redis-cli ping | grep -q PONG"))
        self._service(QDRANT, spec.qdrant.image, spec.qdrant.port,
                      envs=env_list({}, {"QDRANT__SERVICE__API_KEY": self.qdrant_api_key}),
                      data_path="/qdrant/storage",
                      # The image has no curl or wget; bash can open the port itself.
                      health=healthcheck("bash -c ':> /dev/tcp/127.0.0.1/6333'"))
        minio = self._service(
            OBJECT_STORAGE, spec.object_storage.image, spec.object_storage.port,
            envs=env_list({"MINIO_REGION": spec.object_storage.region},
                          {"MINIO_ROOT_USER": self.s3_access_key, "MINIO_ROOT_PASSWORD": self.s3_secret_key}),
            command=["server", "/data"], data_path="/data", health=healthcheck("mc ready local"))
        # MinIO creates no bucket by itself; this one-shot container does, idempotently.
        bucket_name, aliases = self._child_name("object-storage-bucket")
        bucket = docker.Container(
            bucket_name, name="openwebui-minio-bucket",
            image=self._node.image(spec.object_storage.client_image).image_id,
            entrypoints=["sh", "-c"],
            command=['mc alias set fleet "http://$MINIO_HOST:9000" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" '
                     '>/dev/null && mc mb --ignore-existing "fleet/$BUCKET"'],
            envs=env_list({"MINIO_HOST": OBJECT_STORAGE, "BUCKET": spec.object_storage.bucket},
                          {"MINIO_ROOT_USER": self.s3_access_key, "MINIO_ROOT_PASSWORD": self.s3_secret_key}),
            networks_advanced=self._node.networks, must_run=False, attach=True, logs=True,
            opts=self._node.child_opts(self, depends_on=[minio], aliases=aliases))
        self.ready.append(bucket)
        if spec.ollama.enabled:
            self._service(OLLAMA, spec.ollama.image, spec.ollama.port, envs=[],
                          data_path="/root/.ollama", health=healthcheck("ollama list >/dev/null"))
