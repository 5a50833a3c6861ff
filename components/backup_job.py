"""The scheduled backup job on the shared node: this repository's fleet_backup package in a container."""
from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.config import BackupSpec, Secrets
from components.containers import env_list
from components.endpoints import SharedEndpoints
from components.fleet_tls import FleetTls
from components.node import FleetNode
from components.options import depends_on
from components.render.openwebui_env import files_prefix
from components.render.postgres import (BACKUP_ROLE, BACKUP_ROLE_SQL, backup_role_command, backup_role_env,
                                        report_columns_json)
from components.render.tls import CA_FILE, postgres_client_env
from components.secrets import generated_secret
from components.shared_services import SharedServices
from fleet_backup.settings import App as JobApp

REPO = Path(__file__).resolve().parent.parent
JOB_SOURCE = REPO / "fleet_backup"
ROLE_SCRIPT = "/bootstrap/backup-role.sql"
METRICS_PORT = 9464  # the job's Prometheus endpoint inside the container


def job_source_digest(source: Path = JOB_SOURCE) -> str:
    """Content hash of a job's code and recipe: the image tag, so a code change rebuilds it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def job_env(stack: str, spec: BackupSpec, apps: Sequence[str], shared: SharedEndpoints) -> dict[str, str]:
    """The job's non-secret environment (its contract is in fleet_backup/__init__.py)."""
    env = {"BACKUP_STACK": stack, "BACKUP_S3_BUCKET": spec.bucket, "BACKUP_S3_REGION": spec.region,
           "PGHOST": shared.postgres.host, "PGPORT": str(shared.postgres.port),
           # Its own role: it dumps and restores each app as the app's role, so it is no superuser.
           "PGUSER": BACKUP_ROLE, "BACKUP_APPS": ",".join(apps),
           # What a restore grants each app's analytics role, as the analytics-grants step does.
           "BACKUP_REPORT_COLUMNS": report_columns_json(),
           "QDRANT_URL": shared.qdrant_url,
           # Open WebUI's uploaded files, each app under its own prefix in the shared bucket.
           "FILES_S3_BUCKET": shared.bucket, "FILES_S3_ENDPOINT": shared.object_storage_url,
           "FILES_S3_REGION": shared.region, "FILES_S3_PREFIX_TEMPLATE": files_prefix("{app}") + "/",
           "BACKUP_METRICS_PORT": str(METRICS_PORT)}
    if shared.tls:
        # libpq (pg_dump, psycopg) verifies PostgreSQL; Qdrant and the files' MinIO are checked against
        # the fleet CA alone, the backup store against the public roots.
        env.update({**postgres_client_env(), "FLEET_CA_FILE": CA_FILE})
    if spec.keep_last is not None:
        env["BACKUP_KEEP_LAST"] = str(spec.keep_last)
    if spec.copy_to is not None:
        env.update({"BACKUP_COPY_S3_BUCKET": spec.copy_to.bucket, "BACKUP_COPY_S3_REGION": spec.copy_to.region})
        if spec.copy_to.endpoint:
            env["BACKUP_COPY_S3_ENDPOINT"] = spec.copy_to.endpoint
    if spec.lock_days is not None:
        env["BACKUP_S3_OBJECT_LOCK"] = "true"  # writes to a locked bucket must carry a checksum
    endpoint = spec.job_endpoint or spec.endpoint
    if endpoint:
        env["BACKUP_S3_ENDPOINT"] = endpoint
    return env


class BackupJob(pulumi.ComponentResource):
    """Its own database role, the job image built on the shared node, and the job on its schedule."""

    def __init__(self, name: str, spec: BackupSpec, node: FleetNode, env: dict[str, str],
                 secrets: dict[str, pulumi.Output[str]], role: BackupRoleArgs,
                 signing_key: pulumi.Output[str] | None = None, ca: FleetTls | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:BackupJob", name, None, opts)
        self.image_ref = f"openwebui-fleet-backup:{job_source_digest()}"
        role_password = generated_secret(f"{name}-db-password", None, self)
        # Not in the bucket: whoever can write the bucket cannot sign a manifest. Set backupSigningKey
        # to keep a copy outside Pulumi's state (restoring into a new stack needs it).
        signing_key = generated_secret(f"{name}-signing-key", signing_key, self, length=48)
        # The role the job logs in as; re-applied on every deploy, after the app roles exist.
        role_env = backup_role_env(role.apps, role.endpoints.postgres.host, role.endpoints.postgres.port,
                                   role.endpoints.postgres_admin_user)
        if role.endpoints.tls:
            role_env.update(postgres_client_env())
        ca_files = [] if ca is None else [ca.ca_file()]
        database_role = docker.Container(
            f"{name}-database-role", name="openwebui-backup-database-role",
            image=node.image(role.postgres_image).image_id, command=backup_role_command(ROLE_SCRIPT),
            uploads=[docker.ContainerUploadArgs(file=ROLE_SCRIPT, content=BACKUP_ROLE_SQL), *ca_files],
            envs=env_list(role_env, {"PGPASSWORD": role.admin_password, "BACKUP_DB_PASSWORD": role_password}),
            networks_advanced=node.networks, must_run=False, attach=True, logs=True,
            opts=node.child_opts(self, depends_on=depends_on(opts)))
        # Built on the node from this repository, so the job runs exactly the code the tests ran.
        image = docker.RemoteImage(
            f"{name}-image", name=self.image_ref, keep_locally=True,
            # Relative to the project directory (Pulumi runs there): the same input on every machine.
            build=docker.RemoteImageBuildArgs(context=".", dockerfile="fleet_backup/Dockerfile"),
            opts=node.child_opts(self))
        # Scratch space for dumps and the job's state file; rebuilt at will, so not protected.
        work = docker.Volume(f"{name}-work", name="openwebui-backup-work", opts=node.child_opts(self))
        command = ["schedule", "--cron", spec.schedule]
        if spec.verify_schedule:
            command += ["--verify-cron", spec.verify_schedule]
        self.container = docker.Container(
            name, name="openwebui-backup", image=image.image_id, command=command, uploads=ca_files or None,
            envs=env_list(env, {**secrets, "PGPASSWORD": role_password, "BACKUP_SIGNING_KEY": signing_key}),
            volumes=[docker.ContainerVolumeArgs(volume_name=work.name, container_path="/var/lib/fleet-backup")],
            # Prometheus scrapes the job on the shared node's own address.
            ports=[docker.ContainerPortArgs(internal=METRICS_PORT, external=spec.metrics_port, ip=node.address)],
            # Unhealthy once the last backup failed or the last success is two schedule intervals old.
            healthcheck=docker.ContainerHealthcheckArgs(
                tests=["CMD", "python", "-m", "fleet_backup", "health"], interval="5m", timeout="1m",
                retries=1, start_period="2m"),
            networks_advanced=node.networks, restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value="backup")],
            opts=node.child_opts(self, depends_on=[*depends_on(opts), database_role]))
        self.register_outputs({"image": self.image_ref})


@dataclass(frozen=True)
class BackupRoleArgs:
    """What the job's database role is made from: the apps it may swap, and the admin login that creates it."""
    apps: Sequence[str]
    endpoints: SharedEndpoints
    postgres_image: str
    admin_password: pulumi.Output[str]


def backup_credentials(secrets: Secrets, shared: SharedServices) -> dict[str, pulumi.Output[str]]:
    """Keys Pulumi itself uses to create the bucket: the store's from config, or the fleet's own MinIO
    root keys (the model allows only that case); the job gets its own (`job_secrets`)."""
    return {"access_key_id": secrets.get("backupAccessKeyId") or shared.s3_access_key,
            "secret_access_key": secrets.get("backupSecretAccessKey") or shared.s3_secret_key}


def job_store_credentials(secrets: Secrets, shared: SharedServices) -> dict[str, pulumi.Output[str]]:
    """The jobs' keys to the backup bucket: the store's from config, or the backup MinIO user's when
    backups go to the fleet's MinIO (never the root keys, which only create buckets and users)."""
    files = shared.backup_storage_credentials()
    return {"access_key_id": secrets.get("backupAccessKeyId") or pulumi.Output.from_input(files.user),
            "secret_access_key": secrets.get("backupSecretAccessKey") or files.secret}


def job_secrets(store: Mapping[str, pulumi.Output[str]], shared: SharedServices, secrets: Secrets,
                app_passwords: Mapping[str, pulumi.Output[str]]) -> dict[str, pulumi.Output[str]]:
    """The secrets the job reads (BackupJob adds its own DB password and signing key, which it generates).
    The apps' files are read and written with the backup MinIO user's keys, never the root keys."""
    files = shared.backup_storage_credentials()
    env = {"AWS_ACCESS_KEY_ID": store["access_key_id"], "AWS_SECRET_ACCESS_KEY": store["secret_access_key"],
           "QDRANT_API_KEY": shared.qdrant_api_key,
           "FILES_AWS_ACCESS_KEY_ID": pulumi.Output.from_input(files.user), "FILES_AWS_SECRET_ACCESS_KEY": files.secret}
    if (webhook := secrets.get("backupWebhookUrl")) is not None:
        env["BACKUP_WEBHOOK_URL"] = webhook
    for key, variable in (("backupCopyAccessKeyId", "BACKUP_COPY_AWS_ACCESS_KEY_ID"),
                          ("backupCopySecretAccessKey", "BACKUP_COPY_AWS_SECRET_ACCESS_KEY")):
        if (value := secrets.get(key)) is not None:
            env[variable] = value
    # Optional, and never generated: losing Pulumi's state must not lose the key to every backup.
    if (encryption := secrets.get("backupEncryptionKey")) is not None:
        env["BACKUP_ENCRYPTION_KEY"] = encryption
    env.update({JobApp(app).password_env: password for app, password in app_passwords.items()})
    return env
