"""Lifecycle rules: rendered per provider, and accepted and read back unchanged by a real S3 API."""
from __future__ import annotations

import uuid

import boto3

from components.config import parse_backup as load_backup_config
from components.render.lifecycle import render_lifecycle_rules
from realservices import moto_s3_server

AWS = {"bucket": "b-ok", "retention": [
    {"prefix": "backups/prod/", "days": 30, "noncurrentDays": 7, "abortMultipartDays": 2,
     "transitions": [{"days": 7, "storageClass": "GLACIER_IR"}]},
    {"prefix": "backups/staging/", "days": 7, "id": "staging-week"}]}


def test_aws_rules_have_expiration_noncurrent_expiration_abort_and_transitions():
    assert render_lifecycle_rules(load_backup_config(AWS)) == [
        {"ID": "expire-backups-prod", "Filter": {"Prefix": "backups/prod/"}, "Status": "Enabled",
         "Expiration": {"Days": 30}, "NoncurrentVersionExpiration": {"NoncurrentDays": 7},
         "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 2},
         "Transitions": [{"Days": 7, "StorageClass": "GLACIER_IR"}]},
        {"ID": "staging-week", "Filter": {"Prefix": "backups/staging/"}, "Status": "Enabled",
         "Expiration": {"Days": 7}, "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1}},
    ]


def test_generic_provider_rules_carry_only_expiration_and_abort():
    config = load_backup_config({"bucket": "b-ok", "provider": "generic", "endpoint": "https://s3.example",
                                 "retention": [{"prefix": "backups/", "days": 10}]})
    (rule,) = render_lifecycle_rules(config)
    assert set(rule) == {"ID", "Filter", "Status", "Expiration", "AbortIncompleteMultipartUpload"}


def test_rendered_rules_applied_to_s3_read_back_equal():
    rules = render_lifecycle_rules(load_backup_config(AWS))
    with moto_s3_server() as endpoint:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        bucket = f"lifecycle-{uuid.uuid4().hex[:8]}"
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})
        assert s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"] == rules
