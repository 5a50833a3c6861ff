"""Per-app object-storage users: the rendered policies enforced by moto's S3 server with IAM on.

moto checks each request's action against the policy's actions and the object's ARN, which proves
the prefix scoping of object reads, writes and deletes. It does not evaluate `Condition` (it denies
any statement that has one), so the `s3:prefix` limit on ListBucket is checked as rendered JSON only.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from components.render.object_storage import (StorageUser, app_storage_user, backup_storage_user,
                                              mc_host_url, policy_json, reports_storage_user,
                                              secret_env_name, storage_setup_script)
from realservices import free_port, running

BUCKET = "openwebui-files"
BACKUPS = "fleet-backups"


def client(endpoint: str, key: str, secret: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=key, aws_secret_access_key=secret,
                        region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, object]]:
    """moto with IAM enforced; yields an S3 client per user (alpha, beta, backup, reports)."""
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "false"}
    with running([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, env=env):
        setup = {"aws_access_key_id": "setup", "aws_secret_access_key": "setup", "region_name": "us-east-1"}
        iam = boto3.client("iam", endpoint_url=endpoint, **setup)
        root = client(endpoint, "setup", "setup")
        for bucket in (BUCKET, BACKUPS):
            root.create_bucket(Bucket=bucket)
        for key in ("apps/alpha/a.txt", "apps/beta/b.txt", "apps/alphabet/c.txt", "other/x.txt"):
            root.put_object(Bucket=BUCKET, Key=key, Body=b"data of " + key.encode())
        root.put_object(Bucket=BACKUPS, Key="backups/local/run/manifest.json", Body=b"{}")
        users: dict[str, StorageUser] = {
            "alpha": app_storage_user("alpha", BUCKET, "apps/alpha"),
            "beta": app_storage_user("beta", BUCKET, "apps/beta"),
            "backup": backup_storage_user(BUCKET, "apps/", BACKUPS),
            "reports": reports_storage_user(BACKUPS)}
        clients: dict[str, object] = {"endpoint": endpoint}
        for name, user in users.items():
            iam.create_user(UserName=user.access_key)
            iam.put_user_policy(UserName=user.access_key, PolicyName=user.policy_name,
                                PolicyDocument=policy_json(user))
            keys = iam.create_access_key(UserName=user.access_key)["AccessKey"]
            clients[name] = client(endpoint, keys["AccessKeyId"], keys["SecretAccessKey"])
        # From here on every request must be signed by a user and allowed by its policies.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=b"0", method="POST",
                                                     headers={"Content-Type": "text/plain"}))
        yield clients


def denied(call) -> bool:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"] in ("AccessDenied", "403")
    return False


def test_an_app_reads_writes_and_deletes_under_its_own_prefix(s3: dict) -> None:
    alpha = s3["alpha"]
    assert alpha.get_object(Bucket=BUCKET, Key="apps/alpha/a.txt")["Body"].read() == b"data of apps/alpha/a.txt"
    alpha.put_object(Bucket=BUCKET, Key="apps/alpha/new.txt", Body=b"new")
    alpha.put_object_tagging(Bucket=BUCKET, Key="apps/alpha/new.txt",
                             Tagging={"TagSet": [{"Key": "OpenWebUI-User-Id", "Value": "u1"}]})
    alpha.delete_object(Bucket=BUCKET, Key="apps/alpha/new.txt")


def test_an_app_cannot_touch_another_apps_files(s3: dict) -> None:
    alpha, beta = s3["alpha"], s3["beta"]
    assert denied(lambda: alpha.get_object(Bucket=BUCKET, Key="apps/beta/b.txt"))
    assert denied(lambda: alpha.put_object(Bucket=BUCKET, Key="apps/beta/forged.txt", Body=b"x"))
    assert denied(lambda: alpha.delete_object(Bucket=BUCKET, Key="apps/beta/b.txt"))
    assert denied(lambda: alpha.get_object(Bucket=BUCKET, Key="apps/alphabet/c.txt"))  # a longer name
    assert denied(lambda: alpha.get_object(Bucket=BUCKET, Key="other/x.txt"))
    assert denied(lambda: beta.get_object(Bucket=BUCKET, Key="apps/alpha/a.txt"))
    assert beta.get_object(Bucket=BUCKET, Key="apps/beta/b.txt")["Body"].read() == b"data of apps/beta/b.txt"


def test_an_app_cannot_reach_the_backups_or_manage_buckets(s3: dict) -> None:
    alpha = s3["alpha"]
    assert denied(lambda: alpha.put_object(Bucket=BACKUPS, Key="backups/forged/manifest.json", Body=b"{}"))
    assert denied(lambda: alpha.list_objects_v2(Bucket=BACKUPS))
    assert denied(lambda: alpha.create_bucket(Bucket="alpha-own-bucket"))
    assert denied(lambda: alpha.delete_bucket(Bucket=BUCKET))
    assert denied(lambda: alpha.put_bucket_policy(Bucket=BUCKET, Policy='{"Statement": []}'))
    assert denied(lambda: alpha.list_buckets())


def test_the_backup_user_reads_every_apps_files_and_writes_only_backups_and_apps(s3: dict) -> None:
    backup = s3["backup"]
    for key in ("apps/alpha/a.txt", "apps/beta/b.txt"):
        assert backup.get_object(Bucket=BUCKET, Key=key)["Body"].read() == b"data of " + key.encode()
    backup.put_object(Bucket=BACKUPS, Key="backups/local/run/manifest.json", Body=b"{}")
    backup.put_object(Bucket=BUCKET, Key="apps/beta/restored.txt", Body=b"restored")
    assert denied(lambda: backup.get_object(Bucket=BUCKET, Key="other/x.txt"))
    assert denied(lambda: backup.put_object(Bucket=BUCKET, Key="outside.txt", Body=b"x"))


def test_the_report_user_writes_reads_and_deletes_reports(s3: dict) -> None:
    reports = s3["reports"]
    for key in ("reports/local/2026-11-23/report.json", "reports/local/latest/report.json"):
        reports.put_object(Bucket=BACKUPS, Key=key, Body=b'{"apps": {}}')
        assert reports.get_object(Bucket=BACKUPS, Key=key)["Body"].read() == b'{"apps": {}}'
    reports.delete_object(Bucket=BACKUPS, Key="reports/local/2026-11-23/report.json")


def test_the_report_user_cannot_read_or_write_backups_or_apps_files(s3: dict) -> None:
    reports = s3["reports"]
    assert denied(lambda: reports.get_object(Bucket=BACKUPS, Key="backups/local/run/manifest.json"))
    assert denied(lambda: reports.put_object(Bucket=BACKUPS, Key="backups/local/run/manifest.json", Body=b"{}"))
    assert denied(lambda: reports.delete_object(Bucket=BACKUPS, Key="backups/local/run/manifest.json"))
    assert denied(lambda: reports.put_object(Bucket=BACKUPS, Key="reportsX/forged.json", Body=b"{}"))
    assert denied(lambda: reports.get_object(Bucket=BUCKET, Key="apps/alpha/a.txt"))
    assert denied(lambda: reports.put_object(Bucket=BUCKET, Key="reports/x.json", Body=b"{}"))
    assert denied(lambda: reports.put_bucket_policy(Bucket=BACKUPS, Policy='{"Statement": []}'))
    assert denied(lambda: reports.list_buckets())


def test_the_report_users_listing_is_limited_to_reports_in_the_rendered_policy() -> None:
    """Checked as JSON: moto does not evaluate Condition (see the module docstring)."""
    statements = reports_storage_user(BACKUPS).policy["Statement"]
    assert statements == [
        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
         "Resource": [f"arn:aws:s3:::{BACKUPS}/reports/*"]},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{BACKUPS}"],
         "Condition": {"StringLike": {"s3:prefix": ["reports/*"]}}}]


def test_listing_is_limited_to_the_apps_prefix_in_the_rendered_policy() -> None:
    """Checked as JSON: moto does not evaluate Condition (see the module docstring)."""
    statements = json.loads(policy_json(app_storage_user("chat", BUCKET, "apps/chat")))["Statement"]
    listing = [s for s in statements if "s3:ListBucket" in s["Action"]]
    assert listing == [{"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{BUCKET}"],
                        "Condition": {"StringLike": {"s3:prefix": ["apps/chat/*"]}}}]
    assert all(s["Effect"] == "Allow" and "s3:*" not in s["Action"] for s in statements)
    assert {r for s in statements for r in s["Resource"]} == {f"arn:aws:s3:::{BUCKET}",
                                                              f"arn:aws:s3:::{BUCKET}/apps/chat/*"}


def test_the_backup_user_may_list_the_files_bucket_without_a_prefix() -> None:
    """The restore's HeadBucket check (fleet_backup/files.py) needs s3:ListBucket with no prefix on
    MinIO and AWS; moto checks HeadBucket as its own action, so this is checked as JSON."""
    statements = backup_storage_user(BUCKET, "apps/", None).policy["Statement"]
    assert {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{BUCKET}"]} in statements


def test_the_setup_script_passes_no_key_in_any_argv(tmp_path: Path) -> None:
    """The one-shot's script under sh with a stand-in mc that records its argv and stdin."""
    log = tmp_path / "mc.log"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_mc = bin_dir / "mc"
    fake_mc.write_text(f'#!/bin/sh\n{{ printf "argv:"; printf " %s" "$@"; echo; '
                       f'if [ "$2 $3" = "user add" ]; then sed "s/^/stdin: /"; fi; }} >> {log}\n')
    fake_mc.chmod(0o755)
    users = [app_storage_user("chat", BUCKET, "apps/chat"), backup_storage_user(BUCKET, "apps/", None)]
    secrets = {secret_env_name(u): f"secret-of-{u.access_key}-9c1" for u in users}
    root_url = mc_host_url("http://openwebui-minio:9000", "root-key-77", "root/secret+77")
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "MC_HOST_fleet": root_url, **secrets}
    result = subprocess.run(["sh", "-c", storage_setup_script(BUCKET, users, "/policies")], env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    lines = log.read_text().splitlines()
    argv = [line for line in lines if line.startswith("argv:")]
    stdin = [line for line in lines if line.startswith("stdin:")]
    for secret in (*secrets.values(), "root-key-77", "root/secret+77", "root%2Fsecret%2B77"):
        assert not any(secret in line for line in argv), secret
    assert stdin == [l for u in users for l in (f"stdin: {u.access_key}", f"stdin: {secrets[secret_env_name(u)]}")]
    assert "argv: admin policy create fleet openwebui-app-chat /policies/openwebui-app-chat.json" in argv
    assert root_url == "http://root-key-77:root%2Fsecret%2B77@openwebui-minio:9000"


@pytest.mark.parametrize("attach_error, exit_code", [("The specified policy change is already in effect.", 0),
                                                      ("Unable to attach policy: server down", 1)])
def test_the_setup_script_is_idempotent_and_fails_on_a_real_error(tmp_path: Path, attach_error: str,
                                                                  exit_code: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_mc = bin_dir / "mc"
    fake_mc.write_text(f'#!/bin/sh\nif [ "$2 $3" = "policy attach" ]; then echo "{attach_error}"; exit 1; fi\n'
                       'cat >/dev/null\n')
    fake_mc.chmod(0o755)
    users = [app_storage_user("chat", BUCKET, "apps/chat")]
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", secret_env_name(users[0]): "s"}
    result = subprocess.run(["sh", "-c", storage_setup_script(BUCKET, users, "/policies")], env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == exit_code, result.stderr
