"""The scheduled backup job on the shared node: this repository's fleet_backup package in a container."""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.config import BackupSpec, Secrets
from components.containers import env_list
from components.endpoints import SharedEndpoints
from components.node import FleetNode
from components.options import depends_on
from components.render.openwebui_env import files_prefix
from components.shared_services import SharedServices

REPO = Path(__file__).resolve().parent.parent
JOB_SOURCE = REPO / "fleet_backup"


def job_source_digest() -> str:
    """Content hash of the job's code and recipe: the image tag, so a code change rebuilds it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in JOB_SOURCE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def job_env(stack: str, spec: BackupSpec, apps: Sequence[str], shared: SharedEndpoints) -> dict[str, str]:
    """The job's non-secret environment (its contract is in fleet_backup/__init__.py)."""
    env = {"BACKUP_STACK": stack, "BACKUP_S3_BUCKET": spec.bucket, "BACKUP_S3_REGION": spec.region,
           "PGHOST": shared.postgres.host, "PGPORT": str(shared.postgres.port),
           "PGUSER": shared.postgres_admin_user, "BACKUP_APPS": ",".join(apps),
           "QDRANT_URL": f"http://{shared.qdrant}",
           # Open WebUI's uploaded files, each app under its own prefix in the shared bucket.
           "FILES_S3_BUCKET": shared.bucket, "FILES_S3_ENDPOINT": shared.object_storage_url,
           "FILES_S3_REGION": shared.region, "FILES_S3_PREFIX_TEMPLATE": files_prefix("{app}") + "/"}
    endpoint = spec.job_endpoint or spec.endpoint
    if endpoint:
        env["BACKUP_S3_ENDPOINT"] = endpoint
    return env


class BackupJob(pulumi.ComponentResource):
    """Builds the job image on the shared node and runs it on the configured schedule."""

    def __init__(self, name: str, spec: BackupSpec, node: FleetNode, env: dict[str, str],
                 secrets: dict[str, pulumi.Output[str]], opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("openwebui-fleet:index:BackupJob", name, None, opts)
        self.image_ref = f"openwebui-fleet-backup:{job_source_digest()}"
        # Built on the node from this repository, so the job runs exactly the code the tests ran.
        image = docker.RemoteImage(
            f"{name}-image", name=self.image_ref, keep_locally=True,
            # Relative to the project directory (Pulumi runs there): the same input on every machine.
            build=docker.RemoteImageBuildArgs(context=".", dockerfile="fleet_backup/Dockerfile"),
            opts=node.child_opts(self))
        # Scratch space for dumps before upload; rebuilt at will, so not protected.
        work = docker.Volume(f"{name}-work", name="openwebui-backup-work", opts=node.child_opts(self))
        self.container = docker.Container(
            name, name="openwebui-backup", image=image.image_id,
            command=["schedule", "--cron", spec.schedule],
            envs=env_list(env, secrets),
            volumes=[docker.ContainerVolumeArgs(volume_name=work.name, container_path="/var/lib/fleet-backup")],
            networks_advanced=node.networks, restart="unless-stopped",
            labels=[docker.ContainerLabelArgs(label="openwebui-fleet.service", value="backup")],
            opts=node.child_opts(self, depends_on=depends_on(opts)))
        self.register_outputs({"image": self.image_ref})


def backup_credentials(secrets: Secrets, shared: SharedServices) -> dict[str, pulumi.Output[str]]:
    """The store's keys from config, or the fleet's own MinIO keys (the model allows only that case)."""
    return {"access_key_id": secrets.get("backupAccessKeyId") or shared.s3_access_key,
            "secret_access_key": secrets.get("backupSecretAccessKey") or shared.s3_secret_key}


def job_secrets(credentials: dict[str, pulumi.Output[str]], shared: SharedServices) -> dict[str, pulumi.Output[str]]:
    return {"AWS_ACCESS_KEY_ID": credentials["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": credentials["secret_access_key"],
            "PGPASSWORD": shared.postgres_password, "QDRANT_API_KEY": shared.qdrant_api_key,
            "FILES_AWS_ACCESS_KEY_ID": shared.s3_access_key, "FILES_AWS_SECRET_ACCESS_KEY": shared.s3_secret_key}
