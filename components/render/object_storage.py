"""MinIO users and policies: each app reads and writes only its own prefix of the files bucket.

Pure text: the IAM policy documents, and the shell script the one-shot `mc` container runs with the
root keys (the only place they go). Keys never reach argv: mc reads the root keys from MC_HOST_fleet
and each new user's secret from stdin (a shell builtin's printf is no process).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import quote

ALIAS = "fleet"
# What Open WebUI's S3 storage provider calls (storage/provider.py): upload (multipart for large
# files), tagging, download, delete.
APP_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:PutObjectTagging",
                      "s3:GetObjectTagging", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")
# The backup job copies every app's files out and, on restore, back in (fleet_backup/files.py);
# s3:DeleteObject also authorises --prune-files' DeleteObjects, key by key (AWS and MinIO alike).
BACKUP_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
# The report job writes reports/<stack>/… (fleet_analytics/job.py); reading and deleting its own
# reports is all else it may do.
REPORT_OBJECT_ACTIONS = ("s3:GetObject", "s3:PutObject", "s3:DeleteObject")
REPORTS_PREFIX = "reports/"


@dataclass(frozen=True)
class StorageUser:
    """A MinIO user: its access key (a name, not secret), its policy's name and document."""
    access_key: str
    policy_name: str
    policy: dict


def _prefix_policy(bucket: str, prefix: str, actions: tuple[str, ...]) -> list[dict]:
    """Object actions under `prefix` (which ends in '/'), and listing that prefix only."""
    return [
        {"Effect": "Allow", "Action": list(actions), "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"],
         "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}}},
    ]


def app_storage_user(app: str, bucket: str, prefix: str) -> StorageUser:
    """`prefix` is the app's S3_KEY_PREFIX (no trailing '/'): Open WebUI writes `<prefix>/<file>`."""
    statements = _prefix_policy(bucket, prefix.rstrip("/") + "/", APP_OBJECT_ACTIONS)
    return StorageUser(f"openwebui-{app}", f"openwebui-app-{app}",
                       {"Version": "2012-10-17", "Statement": statements})


def backup_storage_user(files_bucket: str, files_prefix: str, backup_bucket: str | None) -> StorageUser:
    """The backup job: every app's files (`files_prefix`, e.g. 'apps/'), and, when backups go to this
    MinIO, the backup bucket."""
    # Listing unconditioned: the job's restore checks the bucket with HeadBucket, which has no prefix.
    statements = [
        {"Effect": "Allow", "Action": list(BACKUP_OBJECT_ACTIONS),
         "Resource": [f"arn:aws:s3:::{files_bucket}/{files_prefix}*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{files_bucket}"]},
    ]
    if backup_bucket is not None:
        statements.append({"Effect": "Allow", "Action": ["s3:*"],
                           "Resource": [f"arn:aws:s3:::{backup_bucket}", f"arn:aws:s3:::{backup_bucket}/*"]})
    return StorageUser("openwebui-backup", "openwebui-backup",
                       {"Version": "2012-10-17", "Statement": statements})


def reports_storage_user(backup_bucket: str) -> StorageUser:
    """The report job: `reports/` in the backup bucket and nothing else (no backup, no app file)."""
    return StorageUser("openwebui-reports", "openwebui-reports",
                       {"Version": "2012-10-17",
                        "Statement": _prefix_policy(backup_bucket, REPORTS_PREFIX, REPORT_OBJECT_ACTIONS)})


def policy_json(user: StorageUser) -> str:
    return json.dumps(user.policy, indent=2, sort_keys=True) + "\n"


def mc_host_url(endpoint: str, access_key: str, secret_key: str) -> str:
    """MC_HOST_<alias>: the alias's URL with the keys as userinfo, so no `mc alias set` argv holds them."""
    scheme, _, host = endpoint.partition("://")
    return f"{scheme}://{quote(access_key, safe='')}:{quote(secret_key, safe='')}@{host}"


def secret_env_name(user: StorageUser) -> str:
    """The one-shot's environment variable holding `user`'s secret key."""
    return "SECRET_" + user.access_key.upper().replace("-", "_")


def storage_setup_script(bucket: str, users: list[StorageUser], policy_dir: str) -> str:
    """Idempotent: the bucket, one policy per user (from `policy_dir/<policy>.json`), each user with
    its secret (from its env variable, piped into mc), and the policy attached."""
    lines = ["set -eu", f'mc mb --ignore-existing "{ALIAS}/{bucket}" >/dev/null']
    for user in users:
        secret = secret_env_name(user)
        lines += [
            f'mc admin policy create {ALIAS} {user.policy_name} {policy_dir}/{user.policy_name}.json >/dev/null',
            # mc reads the access key and secret from stdin when they are not arguments.
            f'printf "%s\\n%s\\n" {user.access_key} "${secret}" | mc admin user add {ALIAS} >/dev/null',
            # Attaching an attached policy fails with "already in effect": that is the wanted state.
            # (Shell only: the mc image has no grep.)
            f"out=$(mc admin policy attach {ALIAS} {user.policy_name} --user {user.access_key} 2>&1) || "
            'case "$out" in *"already in effect"*) ;; *) echo "$out" >&2; exit 1 ;; esac',
        ]
    return "\n".join(lines) + "\n"
