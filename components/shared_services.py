"""PostgreSQL, Redis, Qdrant, MinIO (and optionally Ollama) on one node, or external ones."""
from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config import Secrets, SharedServices as SharedServicesSpec
from components.endpoints import OBJECT_STORAGE, OLLAMA, POSTGRES, QDRANT, REDIS, INTERNAL_PORTS
from components.node import FleetNode
from components.render.redis import redis_server_command

# Data volumes outlive any config edit: protect blocks replace/delete, retain keeps the data if
# someone unprotects and removes the service anyway.
STATEFUL = {"protect": True, "retain_on_delete": True}


def generated_secret(name: str, given: pulumi.Output[str] | None, parent: pulumi.Resource,
                     length: int = 32) -> pulumi.Output[str]:
    """The configured secret, or a generated one; secret either way (mocks don't mark it)."""
    if given is not None:
        return pulumi.Output.secret(given)
    password = random.RandomPassword(name, length=length, special=False,
                                     opts=pulumi.ResourceOptions(parent=parent))
    return pulumi.Output.secret(password.result)


def env_list(plain: dict[str, str], secret: dict[str, pulumi.Output[str]]) -> pulumi.Input[list[str]]:
    """A container's `envs`: KEY=value lines, sorted so the diff of an edit is one line."""
    lines: dict[str, pulumi.Input[str]] = {k: f"{k}={v}" for k, v in plain.items()}
    lines.update({k: pulumi.Output.concat(f"{k}=", v) for k, v in secret.items()})
    return [lines[k] for k in sorted(lines)]


def healthcheck(*test: str, start_period: str = "20s") -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(tests=["CMD-SHELL", *test], interval="10s", timeout="5s",
                                           retries=5, start_period=start_period)


class SharedServices(pulumi.ComponentResource):
    """The services every app's replicas share, with their credentials as secret attributes."""

    def __init__(self, name: str, spec: SharedServicesSpec, node: FleetNode, secrets: Secrets,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:SharedServices", name, None, opts)
        self.spec = spec
        self.node = node
        self.postgres_password = generated_secret("postgres-password", secrets.get("postgresPassword"), self)
        self.redis_password = generated_secret("redis-password", secrets.get("redisPassword"), self)
        self.qdrant_api_key = generated_secret("qdrant-api-key", secrets.get("qdrantApiKey"), self)
        self.s3_access_key = generated_secret("object-storage-access-key",
                                              secrets.get("objectStorageAccessKey"), self, length=20)
        self.s3_secret_key = generated_secret("object-storage-secret-key",
                                              secrets.get("objectStorageSecretKey"), self, length=40)
        # What apps wait for before they start: the services, once healthy.
        self.ready: list[pulumi.Resource] = []
        if spec.mode == "docker":
            self._deploy()
        self.register_outputs({})

    def _service(self, container: str, image: str, published: int, *, envs: pulumi.Input[list[str]],
                 data_path: str | None, health: docker.ContainerHealthcheckArgs,
                 command: list[str] | None = None) -> docker.Container:
        key = container.removeprefix("openwebui-")
        volumes = []
        if data_path is not None:
            volume = docker.Volume(f"{key}-data", name=f"{container}-data",
                                   opts=self.node.child_opts(self, **STATEFUL))
            volumes = [docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path)]
        service = docker.Container(
            key, name=container, image=self.node.image(image).image_id, command=command, envs=envs,
            ports=[docker.ContainerPortArgs(internal=INTERNAL_PORTS[container], external=published,
                                            ip=self.node.address)],
            volumes=volumes, networks_advanced=self.node.networks, healthcheck=health,
            restart="unless-stopped", wait=True, wait_timeout=180,
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value=key)],
            opts=self.node.child_opts(self))
        self.ready.append(service)
        return service

    def _deploy(self) -> None:
        spec = self.spec
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
        bucket = docker.Container(
            "object-storage-bucket", name="openwebui-minio-bucket",
            image=self.node.image(spec.object_storage.client_image).image_id,
            entrypoints=["sh", "-c"],
            command=['mc alias set fleet "http://$MINIO_HOST:9000" "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD" '
                     '>/dev/null && mc mb --ignore-existing "fleet/$BUCKET"'],
            envs=env_list({"MINIO_HOST": OBJECT_STORAGE, "BUCKET": spec.object_storage.bucket},
                          {"MINIO_ROOT_USER": self.s3_access_key, "MINIO_ROOT_PASSWORD": self.s3_secret_key}),
            networks_advanced=self.node.networks, must_run=False, attach=True, logs=True,
            opts=self.node.child_opts(self, depends_on=[minio]))
        self.ready.append(bucket)
        if spec.ollama.enabled:
            self._service(OLLAMA, spec.ollama.image, spec.ollama.port, envs=[],
                          data_path="/root/.ollama", health=healthcheck("ollama list >/dev/null"))
