"""One Open WebUI deployment (an app/tenant): its database, secret key and replicas."""
from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_docker as docker

from components.config import AppSecretOutputs, AppSpec
from components.containers import HEALTH_RETRIES, HEALTH_TIMEOUT_S, STATEFUL, env_list, healthcheck
from components.endpoints import OPENWEBUI_PORT, SharedEndpoints
from components.node import FleetNode
from components.render.openwebui_env import OpenWebUISecrets, openwebui_env, openwebui_secret_env
from components.render.postgres import (ANALYTICS_GRANTS_SQL, APP_DATABASE_SQL, analytics_grants_env,
                                        app_database, app_database_command, app_database_env,
                                        client_timeouts_query)
from components.render.tls import (openwebui_tls_command, openwebui_tls_env, postgres_client_env,
                                   postgres_url_query, redis_url)
from components.render.watchdog import watchdog_healthcheck
from components.secrets import generated_secret
from components.shared_services import SharedServices, quoted
from components.topology import AppTopology, Replica

BOOTSTRAP_SCRIPT = "/bootstrap/app-database.sql"
GRANTS_SCRIPT = "/bootstrap/analytics-grants.sql"


class OpenWebUIApp(pulumi.ComponentResource):
    """Replicas of one app share its secret key, database, Redis prefix and Qdrant prefix.

    `placed` is the app's slice of the topology; `endpoints_from` gives the shared services as each
    node's containers reach them.
    """

    def __init__(self, name: str, spec: AppSpec, placed: AppTopology,
                 endpoints_from: Mapping[str, SharedEndpoints], shared: SharedServices,
                 nodes: Mapping[str, FleetNode], secrets: AppSecretOutputs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:OpenWebUIApp", name, None, opts)
        self.name = name
        self.public_url = placed.public_url
        self._operator_env = placed.env
        self.secret_key = generated_secret(f"{name}-secret-key", None, self, length=48)
        self.db_password = generated_secret(f"{name}-db-password", None, self)
        self.analytics_password = generated_secret(f"{name}-analytics-password", None, self)
        self.role, self.database = app_database(name)
        self._spec, self._secrets, self._shared = spec, secrets, shared
        # A replica's env is the same for every replica of the app on a node (but the migrating one):
        # built once per (node, migrates), not ~20 Outputs per replica.
        self._secret_envs: dict[str, dict[str, pulumi.Output[str]]] = {}
        self._envs: dict[tuple[str, bool], pulumi.Input[list[str]]] = {}
        database = self._database(nodes[placed.database_node], endpoints_from[placed.database_node])

        # Open WebUI's upgrade order: old and new versions never share the database, and one
        # replica migrates. The others carry the migrating replica's id in a label (a label change
        # replaces a container), so when it is replaced Pulumi deletes them first, and creates them
        # only after it is healthy again (delete-before-replace cascades to such dependents).
        migrator = placed.migrator
        first = self._replica(migrator, nodes[migrator.node], endpoints_from[migrator.node],
                              depends_on=[database, *shared.ready])
        self.containers = {migrator.name: first}
        for replica in placed.replicas:
            if replica is not migrator:
                self.containers[replica.name] = self._replica(
                    replica, nodes[replica.node], endpoints_from[replica.node], depends_on=[first],
                    migrator_id=first.id)
        self._analytics_grants(nodes[placed.database_node], endpoints_from[placed.database_node], first)
        self.register_outputs({"url": self.public_url})

    def _database(self, node: FleetNode, endpoints: SharedEndpoints) -> docker.Container:
        """Role and database, (re)applied idempotently by psql whenever the app is deployed."""
        env = app_database_env(self.name, endpoints.postgres.host, endpoints.postgres.port,
                               endpoints.postgres_admin_user)
        if endpoints.tls:
            env.update(postgres_client_env())
        return docker.Container(
            f"{self.name}-database", name=f"openwebui-{self.name}-database",
            image=node.image(self._shared.postgres_image).image_id,
            command=app_database_command(self.name, BOOTSTRAP_SCRIPT),
            uploads=[docker.ContainerUploadArgs(file=BOOTSTRAP_SCRIPT, content=APP_DATABASE_SQL),
                     *self._ca_files()],
            envs=env_list(env, {"PGPASSWORD": self._shared.postgres_password,
                                "APP_DB_PASSWORD": self.db_password,
                                "APP_ANALYTICS_PASSWORD": self.analytics_password}),
            networks_advanced=node.networks, must_run=False, attach=True, logs=True,
            opts=node.child_opts(self, depends_on=self._shared.ready))

    def _ca_files(self) -> list[docker.ContainerUploadArgs]:
        return [] if self._shared.tls is None else [self._shared.tls.ca_file()]

    def _analytics_grants(self, node: FleetNode, endpoints: SharedEndpoints,
                          migrator: docker.Container) -> docker.Container:
        """The analytics role's SELECT on the report's columns, granted once the migrating replica is
        healthy (its tables exist), and again whenever it is replaced (an upgrade may add or rebuild
        tables): it carries the migrator's id in a label, a change of which replaces it."""
        env = analytics_grants_env(self.name, endpoints.postgres.host, endpoints.postgres.port)
        if endpoints.tls:
            env.update(postgres_client_env())
        return docker.Container(
            f"{self.name}-analytics-grants", name=f"openwebui-{self.name}-analytics-grants",
            image=node.image(self._shared.postgres_image).image_id,
            command=["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", GRANTS_SCRIPT],
            uploads=[docker.ContainerUploadArgs(file=GRANTS_SCRIPT, content=ANALYTICS_GRANTS_SQL),
                     *self._ca_files()],
            envs=env_list(env, {"PGPASSWORD": self.db_password}),
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.migrator-id", value=migrator.id)],
            networks_advanced=node.networks, must_run=False, attach=True, logs=True,
            opts=node.child_opts(self, depends_on=[migrator]))

    def _env(self, replica: Replica, endpoints: SharedEndpoints) -> pulumi.Input[list[str]]:
        key = (replica.node, replica.migrates)
        if key not in self._envs:
            if replica.node not in self._secret_envs:
                self._secret_envs[replica.node] = self._secret_env(endpoints)
            plain = openwebui_env(self.name, self._spec, endpoints, self.public_url, replica.migrates,
                                  self._operator_env)
            if endpoints.tls:
                plain.update(openwebui_tls_env())
            self._envs[key] = env_list(plain, self._secret_envs[replica.node])
        return self._envs[key]

    def _secret_env(self, endpoints: SharedEndpoints) -> dict[str, pulumi.Output[str]]:
        pg, tls = endpoints.postgres, endpoints.tls
        database_url = pulumi.Output.concat(
            f"postgresql://{self.role}:", quoted(self.db_password),
            f"@{pg}/{self.database}?{client_timeouts_query()}", f"&{postgres_url_query()}" if tls else "")
        redis_user = self._shared.redis_credentials(self.name)
        redis = pulumi.Output.all(pulumi.Output.from_input(redis_user.user or ""), quoted(redis_user.secret)).apply(
            lambda user_password: redis_url(*user_password, str(endpoints.redis), tls))
        storage = self._shared.storage_credentials(self.name)
        env = openwebui_secret_env(OpenWebUISecrets(
            secret_key=self.secret_key, database_url=database_url, redis_url=redis,
            qdrant_api_key=self._shared.qdrant_api_key, s3_access_key=pulumi.Output.from_input(storage.user),
            s3_secret_key=storage.secret,
            microsoft_client_secret=self._secrets.microsoft_client_secret,
            openai_api_keys=self._secrets.openai_api_keys, extra_env=self._secrets.env))
        return {k: pulumi.Output.secret(v) for k, v in env.items()}

    def _replica(self, replica: Replica, node: FleetNode, endpoints: SharedEndpoints,
                 depends_on: list[pulumi.Resource],
                 migrator_id: pulumi.Output[str] | None = None) -> docker.Container:
        spec = self._spec
        data = docker.Volume(f"{replica.name}-data", name=f"{replica.container_name}-data",
                             opts=node.child_opts(self, **STATEFUL))
        labels: dict[str, pulumi.Input[str]] = {
            "openwebui-fleet.app": self.name, "openwebui-fleet.node": replica.node,
            "openwebui-fleet.replica": str(replica.ordinal),
            "openwebui-fleet.migrates": str(replica.migrates).lower()}
        if migrator_id is not None:
            labels["openwebui-fleet.migrator-id"] = migrator_id
        return docker.Container(
            replica.name, name=replica.container_name, image=node.image(spec.image).image_id,
            envs=self._env(replica, endpoints),
            # With TLS, the image's own command after writing its CA bundle (render/tls.py).
            command=openwebui_tls_command() if endpoints.tls else None, uploads=self._ca_files() or None,
            ports=[docker.ContainerPortArgs(internal=OPENWEBUI_PORT, external=replica.host_port,
                                            ip=replica.address)],
            volumes=[docker.ContainerVolumeArgs(volume_name=data.name, container_path="/app/backend/data")],
            networks_advanced=node.networks,
            # A replica that stops answering is killed by its own check and restarted (render/watchdog.py).
            healthcheck=healthcheck(watchdog_healthcheck(f"http://localhost:{OPENWEBUI_PORT}/health",
                                                         HEALTH_RETRIES, HEALTH_TIMEOUT_S - 1),
                                    start_period="180s" if replica.migrates else "60s"),
            init=True, memory=spec.memory_mb, cpus=str(spec.cpus), restart="unless-stopped",
            wait=True, wait_timeout=600, destroy_grace_seconds=30,
            labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in sorted(labels.items())],
            opts=node.child_opts(self, depends_on=depends_on, delete_before_replace=True))
