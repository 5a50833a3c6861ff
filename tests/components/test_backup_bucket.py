"""BackupBucket under the mock engine (plan/engine.py's one harness): which bucket resources exist per
provider, and how."""
from __future__ import annotations

from typing import Any

import pulumi
import pytest

from components.backup_bucket import BackupBucket
from components.config import parse_backup
from plan.engine import Evaluation, evaluate_program, is_secret

AWS = {"bucket": "openwebui-fleet-backups-prod", "region": "eu-central-1",
       "retention": [{"prefix": "backups/prod/", "days": 30, "noncurrentDays": 7,
                      "transitions": [{"days": 7, "storageClass": "GLACIER_IR"}]}]}
GENERIC = {"bucket": "openwebui-fleet-backups", "provider": "generic", "region": "fsn1",
           "endpoint": "https://fsn1.your-objectstorage.com",
           "retention": [{"prefix": "backups/", "days": 14}]}
# Written out: the rules above as the provider receives them (abortMultipartDays defaults to 1).
AWS_RULES = [{"id": "expire-backups-prod", "status": "Enabled", "filter": {"prefix": "backups/prod/"},
              "expiration": {"days": 30}, "noncurrentVersionExpiration": {"noncurrentDays": 7},
              "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1},
              "transitions": [{"days": 7, "storageClass": "GLACIER_IR"}]}]
GENERIC_RULES = [{"id": "expire-backups", "status": "Enabled", "filter": {"prefix": "backups/"},
                  "expiration": {"days": 14}, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1}}]


def bucket_alone(raw: dict[str, Any], **credentials: Any) -> Evaluation:
    """A program that declares only the BackupBucket for `raw` (the `backup` stack key)."""
    ev = evaluate_program("test", lambda: BackupBucket("backups", parse_backup(raw), **credentials))
    assert ev.error is None, ev.error
    return ev


def test_aws_bucket_has_versioning_encryption_public_access_block_and_the_rendered_lifecycle():
    ev = bucket_alone(AWS)
    assert {r.name: r.type for r in ev.resources} == {
        "backups": "openwebui-fleet:index:BackupBucket",
        "backups-bucket": "aws:s3/bucket:Bucket", "backups-s3": "pulumi:providers:aws",
        "backups-versioning": "aws:s3/bucketVersioning:BucketVersioning",
        "backups-encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "backups-public-access-block": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "backups-lifecycle": "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
    assert ev.named("backups-lifecycle").inputs["rules"] == AWS_RULES
    assert ev.named("backups-versioning").inputs["versioningConfiguration"] == {"status": "Enabled"}
    assert "endpoints" not in ev.named("backups-s3").inputs


def test_bucket_is_protected_and_retained_and_children_are_parented_to_the_component():
    ev = bucket_alone(AWS)
    bucket = ev.named("backups-bucket")
    assert bucket.protect and bucket.retain_on_delete
    component = ev.named("backups")
    for name in ("backups-bucket", "backups-s3", "backups-versioning", "backups-lifecycle"):
        assert ev.named(name).parent == component.urn
    assert component.urn.endswith("$openwebui-fleet:index:BackupBucket::backups")
    assert not any(ev.named(n).protect for n in ("backups-versioning", "backups-lifecycle"))


@pytest.mark.parametrize(("raw", "present"), [
    (GENERIC, set()),
    ({**GENERIC, "provider": "minio", "endpoint": "http://minio:9000"}, {"backups-versioning"}),
])
def test_s3_compatible_bucket_skips_features_the_store_lacks_and_uses_its_endpoint(raw, present):
    ev = bucket_alone(raw)
    optional = {"backups-versioning", "backups-encryption", "backups-public-access-block"}
    assert optional & {r.name for r in ev.resources} == present
    assert ev.named("backups-lifecycle").inputs["rules"] == GENERIC_RULES
    provider = ev.named("backups-s3").inputs
    assert raw["endpoint"] in str(provider["endpoints"])
    assert str(provider["s3UsePathStyle"]).lower() == "true"


def test_credentials_reach_the_provider_as_secrets_even_when_passed_as_plain_outputs():
    ev = bucket_alone(GENERIC, access_key_id=pulumi.Output.from_input("AKIATEST"),
                      secret_access_key=pulumi.Output.from_input("not-logged"))
    provider = ev.named("backups-s3").raw_inputs
    assert is_secret(provider["accessKey"]) and is_secret(provider["secretKey"])
    assert ev.named("backups-s3").inputs["secretKey"] == "not-logged"
