"""The scheduled usage report on the shared node: this repository's fleet_analytics package in a container."""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_docker as docker

from components.backup_job import REPO, job_source_digest
from components.config import ANALYTICS_STORE_SECRETS, AnalyticsSpec, BackupSpec, Secrets
from components.containers import env_list, healthcheck
from components.endpoints import SharedEndpoints
from components.fleet_tls import FleetTls
from components.node import FleetNode
from components.options import depends_on
from components.render.tls import postgres_client_env
from components.shared_services import SharedServices

JOB_SOURCE = REPO / "fleet_analytics"


def analytics_env(stack: str, spec: AnalyticsSpec, backup: BackupSpec, apps: Sequence[str],
                  shared: SharedEndpoints) -> dict[str, str]:
    """The job's non-secret environment (its contract is in fleet_analytics/__init__.py)."""
    env = {"ANALYTICS_STACK": stack, "ANALYTICS_APPS": ",".join(apps),
           "PGHOST": shared.postgres.host, "PGPORT": str(shared.postgres.port),
           "ANALYTICS_S3_BUCKET": backup.bucket, "ANALYTICS_S3_REGION": backup.region,
           "ANALYTICS_SINCE_DAYS": str(spec.since_days), "ANALYTICS_CURRENCY": spec.currency}
    if shared.tls:
        env.update(postgres_client_env())  # its reports go to the backup store, never the fleet's MinIO
    if spec.prices:
        env["ANALYTICS_PRICES"] = json.dumps({m: {"input": p.input, "output": p.output}
                                              for m, p in sorted(spec.prices.items())})
    endpoint = backup.job_endpoint or backup.endpoint
    if endpoint:
        env["ANALYTICS_S3_ENDPOINT"] = endpoint
    return env


def analytics_store_credentials(secrets: Secrets, shared: SharedServices) -> dict[str, pulumi.Output[str]]:
    """The report job's own keys to the backup bucket, never the backup job's: its MinIO user (limited
    to `reports/`) when the bucket is in the fleet's MinIO, else the store's keys from config (the
    config model requires them then)."""
    own = shared.reports_storage_credentials()
    if own is not None:
        return {"access_key_id": pulumi.Output.from_input(own.user), "secret_access_key": own.secret}
    access_key, secret_key = (secrets.get(k) for k in ANALYTICS_STORE_SECRETS)
    assert access_key is not None and secret_key is not None, "FleetSpec._check_analytics requires them"
    return {"access_key_id": access_key, "secret_access_key": secret_key}


def analytics_secrets(credentials: Mapping[str, pulumi.Output[str]],
                      app_passwords: Mapping[str, pulumi.Output[str]]) -> dict[str, pulumi.Output[str]]:
    """The job's bucket keys and each app's read-only analytics role password; never an admin login."""
    secrets = {"AWS_ACCESS_KEY_ID": credentials["access_key_id"],
               "AWS_SECRET_ACCESS_KEY": credentials["secret_access_key"]}
    for app, password in app_passwords.items():
        secrets["ANALYTICS_PASSWORD_" + app.replace("-", "_").upper()] = password
    return secrets


class AnalyticsJob(pulumi.ComponentResource):
    """Builds the report image on the shared node and publishes the report on the configured schedule."""

    def __init__(self, name: str, spec: AnalyticsSpec, node: FleetNode, env: dict[str, str],
                 secrets: dict[str, pulumi.Output[str]], ca: FleetTls | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:AnalyticsJob", name, None, opts)
        self.image_ref = f"openwebui-fleet-analytics:{job_source_digest(JOB_SOURCE)}"
        image = docker.RemoteImage(
            f"{name}-image", name=self.image_ref, keep_locally=True,
            build=docker.RemoteImageBuildArgs(context=".", dockerfile="fleet_analytics/Dockerfile"),
            opts=node.child_opts(self))
        self.container = docker.Container(
            name, name="openwebui-analytics", image=image.image_id,
            command=["schedule", "--cron", spec.schedule],
            envs=env_list(env, secrets), uploads=None if ca is None else [ca.ca_file()],
            # Unhealthy while the last run failed (fleet_analytics health); healthy before the first run.
            healthcheck=healthcheck("python -m fleet_analytics health"),
            networks_advanced=node.networks, restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value="analytics")],
            opts=node.child_opts(self, depends_on=depends_on(opts)))
        self.register_outputs({"image": self.image_ref})
