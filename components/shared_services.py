"""PostgreSQL, Redis, Qdrant, MinIO (and optionally Ollama) on one node, or external ones.

Least privilege per app (docker mode): each app gets its own Redis ACL user and its own MinIO user,
both limited to the app's prefix, the backup job its own MinIO user, and the report job one limited to
`reports/` in the backup bucket (when that bucket is in this MinIO). The services' root
credentials stay with the services and the one-shot that creates the users.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import pulumi
import pulumi_docker as docker

from components.config import Secrets, SharedServicesSpec
from components.containers import STATEFUL, env_list, healthcheck
from components.endpoints import INTERNAL_PORTS, OBJECT_STORAGE, OLLAMA, POSTGRES, QDRANT, REDIS
from components.fleet_tls import FleetTls
from components.node import FleetNode
from components.render.postgres import postgres_server_command
from components.render.object_storage import (StorageUser, app_storage_user, backup_storage_user, mc_host_url,
                                              policy_json, reports_storage_user, secret_env_name,
                                              storage_setup_script)
from components.render.openwebui_env import files_prefix
from components.render.redis import (ACL_DIR, ACL_UPLOAD, RedisAppUser, acl_password_hash, redis_acl_file,
                                     redis_app_user, redis_health_command, redis_key_prefix, redis_server_command,
                                     redis_users_script)
from components.render.tls import (CA_FILE, MINIO_CERT_FILE, MINIO_KEY_FILE, POSTGRES_HBA, POSTGRES_HBA_FILE,
                                   minio_health_command, minio_server_command, postgres_tls_command,
                                   qdrant_tls_env, redis_cli_tls_args, redis_tls_args)
from components.secrets import generated_secret

POLICY_DIR = "/policies"
# Ollama has no authentication: it listens on the shared node's loopback only, never on its address.
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Credentials:
    """A user name (None: the service has only a password) and its secret."""
    user: pulumi.Output[str] | str | None
    secret: pulumi.Output[str]


class SharedServices(pulumi.ComponentResource):
    """The services every app's replicas share, with each app's credentials as secret attributes.

    `apps`: every app's name (each gets its own users); `backup_bucket`: the backup bucket when
    backups go to this MinIO (the backup user may write it); `reports`: the report job writes
    `reports/` there, as a user of its own.
    """

    def __init__(self, name: str, spec: SharedServicesSpec, node: FleetNode, secrets: Secrets,
                 postgres_settings: Mapping[str, str], apps: Sequence[str], backup_bucket: str | None = None,
                 reports: bool = False, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:SharedServices", name, None, opts)
        self._name, self._spec, self._node = name, spec, node
        self._postgres_settings = postgres_settings
        # The image whose psql bootstraps each app's database (any node may run it).
        self.postgres_image: str = spec.postgres.image
        self.postgres_password = self._secret("postgres-password", secrets.get("postgresPassword"))
        self.redis_password = self._secret("redis-password", secrets.get("redisPassword"))
        self.qdrant_api_key = self._secret("qdrant-api-key", secrets.get("qdrantApiKey"))
        self.s3_access_key = self._secret("object-storage-access-key", secrets.get("objectStorageAccessKey"), 20)
        self.s3_secret_key = self._secret("object-storage-secret-key", secrets.get("objectStorageSecretKey"), 40)
        self._apps = sorted(apps)
        self._per_app = spec.mode == "docker"  # users the program can create: only in services it runs
        self._redis_app_passwords = {app: self._new_secret(f"redis-{app}-password") for app in self._apps} \
            if self._per_app else {}
        self._storage_users = {app: app_storage_user(app, spec.object_storage.bucket, files_prefix(app))
                               for app in self._apps}
        self._backup_user = backup_storage_user(spec.object_storage.bucket, files_prefix("").rstrip("/") + "/",
                                                backup_bucket)
        self._reports_user = reports_storage_user(backup_bucket) \
            if self._per_app and reports and backup_bucket is not None else None
        self._storage_secrets = {user.access_key: self._new_secret(f"object-storage-{user.access_key}-secret-key", 40)
                                 for user in self._job_users()} if self._per_app else {}
        # What apps wait for before they start: the services, once healthy.
        self.ready: list[pulumi.Resource] = []
        # The CA and certificates when the services speak TLS only; clients take the CA from here.
        self.tls: FleetTls | None = None
        if spec.mode == "docker" and spec.tls:
            self.tls = FleetTls(f"{name}-tls", [POSTGRES, REDIS, QDRANT, OBJECT_STORAGE], node.address,
                                opts=pulumi.ResourceOptions(parent=self))
        if spec.mode == "docker":
            self._deploy()
        self.register_outputs({})

    # ── what apps and the backup job are given ──

    def redis_credentials(self, app: str) -> Credentials:
        """The app's own ACL user (docker mode), or the one password of an external Redis."""
        if self._per_app:
            return Credentials(redis_app_user(app), self._redis_app_passwords[app])
        return Credentials(None, self.redis_password)

    def storage_credentials(self, app: str) -> Credentials:
        """The app's own MinIO user (docker mode), or the external store's keys."""
        if self._per_app:
            user = self._storage_users[app]
            return Credentials(pulumi.Output.secret(user.access_key), self._storage_secrets[user.access_key])
        return Credentials(self.s3_access_key, self.s3_secret_key)

    def backup_storage_credentials(self) -> Credentials:
        """The backup job's MinIO user (docker mode), or the external store's keys."""
        if self._per_app:
            access_key = self._backup_user.access_key
            return Credentials(pulumi.Output.secret(access_key), self._storage_secrets[access_key])
        return Credentials(self.s3_access_key, self.s3_secret_key)

    def reports_storage_credentials(self) -> Credentials | None:
        """The report job's MinIO user, when reports go to this MinIO; else None (the store is not ours)."""
        if self._reports_user is None:
            return None
        access_key = self._reports_user.access_key
        return Credentials(pulumi.Output.secret(access_key), self._storage_secrets[access_key])

    def _job_users(self) -> list[StorageUser]:
        """Every MinIO user the setup step creates: the apps', the backup job's, the report job's."""
        return [*self._storage_users.values(), self._backup_user,
                *([self._reports_user] if self._reports_user is not None else [])]

    # ── children ──

    def _child_name(self, key: str) -> tuple[str, list[pulumi.Alias]]:
        """`<component>-<key>`; children were once named `<key>` alone, an alias keeps their URNs."""
        return f"{self._name}-{key}", [pulumi.Alias(name=key)]

    def _secret(self, key: str, given: pulumi.Output[str] | None, length: int = 32) -> pulumi.Output[str]:
        return generated_secret(f"{self._name}-{key}", given, self, length=length, renamed_from=key)

    def _new_secret(self, key: str, length: int = 32) -> pulumi.Output[str]:
        return generated_secret(f"{self._name}-{key}", None, self, length=length)

    def _service(self, container: str, image: str, published: int, *, envs: pulumi.Input[list[str]],
                 data_path: str | None, health: docker.ContainerHealthcheckArgs,
                 command: list[str] | None = None, bind: str | None = None,
                 extra_volumes: list[docker.ContainerVolumeArgs] | None = None,
                 depends_on: list[pulumi.Resource] | None = None) -> docker.Container:
        """A service container; with TLS on, its certificate, key and the CA are uploaded into it."""
        key = container.removeprefix("openwebui-")
        volumes = []
        if data_path is not None:
            volume_name, aliases = self._child_name(f"{key}-data")
            volume = docker.Volume(volume_name, name=f"{container}-data",
                                   opts=self._node.child_opts(self, aliases=aliases, **STATEFUL))
            volumes = [docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path)]
        volumes += extra_volumes or []
        service_name, aliases = self._child_name(key)
        service = docker.Container(
            service_name, name=container, image=self._node.image(image).image_id, command=command, envs=envs,
            uploads=self._server_files(container),
            ports=[docker.ContainerPortArgs(internal=INTERNAL_PORTS[container], external=published,
                                            ip=bind or self._node.address)],
            volumes=volumes, networks_advanced=self._node.networks, healthcheck=health,
            restart="unless-stopped", wait=True, wait_timeout=180,
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value=key)],
            opts=self._node.child_opts(self, aliases=aliases, depends_on=depends_on))
        self.ready.append(service)
        return service

    def _server_files(self, container: str) -> list[docker.ContainerUploadArgs] | None:
        if self.tls is None or container == OLLAMA:
            return None
        if container == OBJECT_STORAGE:
            return self.tls.server_files(container, MINIO_CERT_FILE, MINIO_KEY_FILE)
        files = self.tls.server_files(container)
        if container == POSTGRES:
            files.append(docker.ContainerUploadArgs(file=POSTGRES_HBA_FILE, content=POSTGRES_HBA))
        return files

    def _client_files(self) -> list[docker.ContainerUploadArgs]:
        """What a one-shot client of the services needs to verify them: the CA, when TLS is on."""
        return [] if self.tls is None else [self.tls.ca_file()]

    def _redis_acl(self) -> pulumi.Output[str]:
        """The ACL file: SHA-256 hashes only, but secret all the same (a hash lets one test guesses)."""
        apps = self._apps
        passwords = [self._redis_app_passwords[app] for app in apps]

        def render(values: list[str]) -> str:
            admin, *own = values
            return redis_acl_file(acl_password_hash(admin), [
                RedisAppUser(redis_app_user(app), acl_password_hash(pw), redis_key_prefix(app))
                for app, pw in zip(apps, own)])
        return pulumi.Output.secret(pulumi.Output.all(self.redis_password, *passwords).apply(render))

    def _deploy(self) -> None:
        spec = self._spec
        self._service(POSTGRES, spec.postgres.image, spec.postgres.port,
                      envs=env_list({"POSTGRES_USER": spec.postgres.admin_user},
                                    {"POSTGRES_PASSWORD": self.postgres_password}),
                      data_path="/var/lib/postgresql/data",
                      command=self._postgres_command(),
                      health=healthcheck('pg_isready -q -U "$POSTGRES_USER" -d postgres'))
        acl_volume, users = self._redis_users()
        self._service(REDIS, spec.redis.image, spec.redis.port,
                      envs=env_list({}, {"REDISCLI_AUTH": self.redis_password}),
                      command=self._redis_command(), data_path="/data",
                      extra_volumes=[acl_volume], depends_on=[users],
                      health=healthcheck(redis_health_command(self._redis_cli_tls())))
        self._service(QDRANT, spec.qdrant.image, spec.qdrant.port,
                      envs=env_list(qdrant_tls_env() if self.tls else {},
                                    {"QDRANT__SERVICE__API_KEY": self.qdrant_api_key}),
                      data_path="/qdrant/storage",
                      # The image has no curl or wget; bash can open the port itself.
                      health=healthcheck("bash -c ':> /dev/tcp/127.0.0.1/6333'"))
        minio = self._service(
            OBJECT_STORAGE, spec.object_storage.image, spec.object_storage.port,
            envs=env_list({"MINIO_REGION": spec.object_storage.region},
                          {"MINIO_ROOT_USER": self.s3_access_key, "MINIO_ROOT_PASSWORD": self.s3_secret_key}),
            command=minio_server_command("/data", self.tls is not None), data_path="/data",
            health=healthcheck(minio_health_command(self.tls is not None)))
        self.ready.append(self._storage_setup(minio))
        if spec.ollama.enabled:
            self._service(OLLAMA, spec.ollama.image, spec.ollama.port, envs=[], bind=LOOPBACK,
                          data_path="/root/.ollama", health=healthcheck("ollama list >/dev/null"))

    def _postgres_command(self) -> list[str]:
        command = postgres_server_command(dict(self._postgres_settings))
        return command if self.tls is None else postgres_tls_command(command)

    def _redis_command(self) -> list[str]:
        command = redis_server_command(self._spec.redis)
        return command if self.tls is None else [*command, *redis_tls_args(INTERNAL_PORTS[REDIS])]

    def _redis_cli_tls(self) -> list[str]:
        return [] if self.tls is None else redis_cli_tls_args()

    def _redis_users(self) -> tuple[docker.ContainerVolumeArgs, docker.Container]:
        """Redis reads its users from a volume that this one-shot step writes and, when Redis runs,
        reloads live (ACL LOAD): adding an app never restarts Redis. Rewritten on every deploy, so
        the volume is not protected."""
        volume = docker.Volume(f"{self._name}-redis-acl", name=f"{REDIS}-acl", opts=self._node.child_opts(self))
        mount = docker.ContainerVolumeArgs(volume_name=volume.name, container_path=ACL_DIR)
        users = docker.Container(
            f"{self._name}-redis-users", name=f"{REDIS}-users",
            image=self._node.image(self._spec.redis.image).image_id, entrypoints=["sh", "-c"],
            command=[redis_users_script(REDIS, INTERNAL_PORTS[REDIS], self._redis_cli_tls())],
            uploads=[docker.ContainerUploadArgs(file=ACL_UPLOAD, content=self._redis_acl()), *self._client_files()],
            envs=env_list({}, {"REDISCLI_AUTH": self.redis_password}), volumes=[mount],
            networks_advanced=self._node.networks, must_run=False, attach=True, logs=True,
            opts=self._node.child_opts(self))
        self.ready.append(users)
        return mount, users

    def _storage_setup(self, minio: docker.Container) -> docker.Container:
        """MinIO creates no bucket or user by itself; this one-shot container does, idempotently.
        The only holder of the root keys besides MinIO itself (in MC_HOST_fleet, never in argv)."""
        spec = self._spec
        users = self._job_users()
        scheme = "http" if self.tls is None else "https"
        root_url = pulumi.Output.all(self.s3_access_key, self.s3_secret_key).apply(
            lambda keys: mc_host_url(f"{scheme}://{OBJECT_STORAGE}:{INTERNAL_PORTS[OBJECT_STORAGE]}", *keys))
        secrets = {"MC_HOST_fleet": root_url,
                   **{secret_env_name(u): self._storage_secrets[u.access_key] for u in users}}
        name, aliases = self._child_name("object-storage-bucket")
        return docker.Container(
            name, name="openwebui-minio-bucket",
            image=self._node.image(spec.object_storage.client_image).image_id,
            entrypoints=["sh", "-c"],
            command=[storage_setup_script(spec.object_storage.bucket, users, POLICY_DIR)],
            uploads=[*(docker.ContainerUploadArgs(file=f"{POLICY_DIR}/{u.policy_name}.json", content=policy_json(u))
                       for u in users), *self._client_files()],
            # mc (Go) trusts SSL_CERT_FILE instead of the system roots: this step talks to MinIO only.
            envs=env_list({} if self.tls is None else {"SSL_CERT_FILE": CA_FILE}, secrets),
            networks_advanced=self._node.networks, must_run=False, attach=True, logs=True,
            opts=self._node.child_opts(self, depends_on=[minio], aliases=aliases))


def quoted(secret: pulumi.Output[str]) -> pulumi.Output[str]:
    """A secret as URL userinfo."""
    return secret.apply(lambda value: quote(value, safe=""))


