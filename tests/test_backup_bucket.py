"""BackupBucket under Pulumi's mock engine: which bucket resources exist per provider, and how."""
from __future__ import annotations

from typing import Any

import pulumi
import pytest
from pulumi.runtime.mocks import MockMonitor

from components.backup_bucket import BackupBucket
from components.config import parse_backup as load_backup_config
from components.render.lifecycle import render_lifecycle_rules

AWS = {"bucket": "openwebui-fleet-backups-prod", "region": "eu-central-1",
       "retention": [{"prefix": "backups/prod/", "days": 30, "noncurrentDays": 7,
                      "transitions": [{"days": 7, "storageClass": "GLACIER_IR"}]}]}
GENERIC = {"bucket": "openwebui-fleet-backups", "provider": "generic", "region": "fsn1",
           "endpoint": "https://fsn1.your-objectstorage.com",
           "retention": [{"prefix": "backups/", "days": 14}]}


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.inputs: dict[str, tuple[str, dict[str, Any]]] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict]:
        self.inputs[args.name] = (args.typ, args.inputs)
        return f"{args.name}-id", args.inputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


class _Monitor(MockMonitor):
    """Also records the resource options the Mocks API does not show."""

    def __init__(self, mocks: _Mocks) -> None:
        super().__init__(mocks)
        self.options: dict[str, dict[str, Any]] = {}

    def RegisterResource(self, request):  # noqa: N802 - gRPC method name
        self.options[request.name] = {"protect": request.protect, "retainOnDelete": request.retainOnDelete,
                                      "parent": request.parent}
        return super().RegisterResource(request)


def _evaluate(raw: dict[str, Any], **credentials: Any) -> tuple[_Mocks, _Monitor]:
    mocks = _Mocks()
    monitor = _Monitor(mocks)
    pulumi.runtime.set_mocks(mocks, project="openwebui-fleet", stack="test", preview=False, monitor=monitor)

    @pulumi.runtime.test
    def build():
        return BackupBucket("backups", load_backup_config(raw), **credentials).bucket_name

    build()
    return mocks, monitor


def _camel(value: Any) -> Any:
    """The S3-API dict shape in the engine's camelCase spelling (ID -> id, Days -> days)."""
    if isinstance(value, dict):
        return {("id" if k == "ID" else k[0].lower() + k[1:]): _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def test_aws_bucket_has_versioning_encryption_public_access_block_and_the_rendered_lifecycle():
    mocks, monitor = _evaluate(AWS)
    types = {name: typ for name, (typ, _) in mocks.inputs.items()}
    assert types == {
        "backups": "openwebui-fleet:index:BackupBucket",
        "backups-bucket": "aws:s3/bucket:Bucket", "backups-s3": "pulumi:providers:aws",
        "backups-versioning": "aws:s3/bucketVersioning:BucketVersioning",
        "backups-encryption": "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "backups-public-access-block": "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "backups-lifecycle": "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    }
    lifecycle = mocks.inputs["backups-lifecycle"][1]["rules"]
    assert lifecycle == _camel(render_lifecycle_rules(load_backup_config(AWS)))
    assert mocks.inputs["backups-versioning"][1]["versioningConfiguration"] == {"status": "Enabled"}
    assert "endpoints" not in mocks.inputs["backups-s3"][1]


def test_bucket_is_protected_and_retained_and_children_are_parented_to_the_component():
    _, monitor = _evaluate(AWS)
    bucket = monitor.options["backups-bucket"]
    assert bucket["protect"] and bucket["retainOnDelete"]
    for name in ("backups-bucket", "backups-s3", "backups-versioning", "backups-lifecycle"):
        assert monitor.options[name]["parent"].endswith("$openwebui-fleet:index:BackupBucket::backups")
    assert not any(monitor.options[n]["protect"] for n in ("backups-versioning", "backups-lifecycle"))


@pytest.mark.parametrize(("raw", "present"), [
    (GENERIC, set()),
    ({**GENERIC, "provider": "minio", "endpoint": "http://minio:9000"}, {"backups-versioning"}),
])
def test_s3_compatible_bucket_skips_features_the_store_lacks_and_uses_its_endpoint(raw, present):
    mocks, _ = _evaluate(raw)
    optional = {"backups-versioning", "backups-encryption", "backups-public-access-block"}
    assert optional & set(mocks.inputs) == present
    assert mocks.inputs["backups-lifecycle"][1]["rules"] == _camel(render_lifecycle_rules(load_backup_config(raw)))
    provider = mocks.inputs["backups-s3"][1]
    assert raw["endpoint"] in str(provider["endpoints"])
    assert str(provider["s3UsePathStyle"]).lower() == "true"


def test_credentials_reach_the_provider_as_secrets_even_when_passed_as_plain_outputs():
    mocks, _ = _evaluate(GENERIC, access_key_id=pulumi.Output.from_input("AKIATEST"),
                         secret_access_key=pulumi.Output.from_input("not-logged"))
    provider = mocks.inputs["backups-s3"][1]
    assert pulumi.runtime.rpc.is_rpc_secret(provider["accessKey"])
    assert pulumi.runtime.rpc.is_rpc_secret(provider["secretKey"])
