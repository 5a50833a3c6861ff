"""copyTo: every run copied to a second bucket on another S3 server, verified there, restorable from it."""
from __future__ import annotations

import uuid
from collections.abc import Iterator

import boto3
import pytest

from appdata import drop_database, fingerprint
from backup_env import bucket_contents, dbs, env, job, ok, pg, qdrant, run_ids, s3, s3_endpoint  # noqa: F401
from realservices import free_port, moto_s3_server


@pytest.fixture(scope="module")
def second_endpoint() -> Iterator[str]:
    with moto_s3_server() as url:
        yield url


@pytest.fixture
def copy_env(env: dict[str, str], second_endpoint: str) -> tuple[dict[str, str], object]:
    second = boto3.client("s3", endpoint_url=second_endpoint, region_name="eu-central-1",
                          aws_access_key_id="copy-key-id", aws_secret_access_key="copy-secret")
    bucket = f"offsite-{uuid.uuid4().hex[:12]}"
    second.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    return ({**env, "BACKUP_COPY_S3_BUCKET": bucket, "BACKUP_COPY_S3_ENDPOINT": second_endpoint,
             "BACKUP_COPY_S3_REGION": "eu-central-1", "BACKUP_COPY_AWS_ACCESS_KEY_ID": "copy-key-id",
             "BACKUP_COPY_AWS_SECRET_ACCESS_KEY": "copy-secret"}, second)


def test_every_run_is_copied_byte_for_byte_and_restores_from_the_copy_after_losing_the_first_bucket(
        pg, copy_env, s3):
    env, second = copy_env
    before = {db: fingerprint(pg, db) for db in dbs()}
    ok(env, "backup")
    primary = bucket_contents(s3, env["BACKUP_S3_BUCKET"])
    copied = bucket_contents(second, env["BACKUP_COPY_S3_BUCKET"])
    assert copied == primary and any(k.endswith("/manifest.json") for k in copied)
    for key in primary:
        assert (second.head_object(Bucket=env["BACKUP_COPY_S3_BUCKET"], Key=key)["Metadata"]
                == s3.head_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key)["Metadata"])

    for key in primary:  # the first store is lost
        s3.delete_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key)
    for db in dbs():
        drop_database(pg, db)
    assert ok(env, "list", "--from-copy").stdout.count("\n") == 1
    ok(env, "restore", "--from-copy")
    assert {db: fingerprint(pg, db) for db in dbs()} == before


def test_an_unreachable_copy_target_fails_the_run_with_upload_failed_and_keeps_the_first_copy(copy_env):
    env, _ = copy_env
    result = job({**env, "BACKUP_COPY_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}, "backup")
    assert result.returncode == 5 and f"to s3://{env['BACKUP_COPY_S3_BUCKET']} failed" in result.stderr
    assert len(run_ids(env)) == 1
    assert "copy-secret" not in result.stderr
