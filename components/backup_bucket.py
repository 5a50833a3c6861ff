"""The S3 bucket that holds backups: versioning, encryption, public-access block and lifecycle rules."""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import BackupSpec
from components.options import depends_on
from components.render.lifecycle import render_lifecycle_rules


def lifecycle_rule_args(rule: dict[str, Any]) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    """One rendered S3-API rule dict as pulumi-aws args (same data, provider spelling)."""
    s3 = aws.s3
    return s3.BucketLifecycleConfigurationRuleArgs(
        id=rule["ID"],
        status=rule["Status"],
        filter=s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=rule["Filter"]["Prefix"]),
        expiration=s3.BucketLifecycleConfigurationRuleExpirationArgs(days=rule["Expiration"]["Days"]),
        abort_incomplete_multipart_upload=s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]),
        noncurrent_version_expiration=(
            s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
            if "NoncurrentVersionExpiration" in rule else None),
        transitions=[s3.BucketLifecycleConfigurationRuleTransitionArgs(days=t["Days"], storage_class=t["StorageClass"])
                     for t in rule.get("Transitions", [])] or None,
    )


class BackupBucket(pulumi.ComponentResource):
    """The backup bucket on AWS or an S3-compatible store, configured as far as the store allows."""

    def __init__(self, name: str, spec: BackupSpec, *,
                 access_key_id: pulumi.Output[str] | None = None,
                 secret_access_key: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        features = spec.features
        # Declared so the policy pack can hold an S3-compatible store to what it supports.
        super().__init__("openwebui-fleet:index:BackupBucket", name, {
            "storeProvider": spec.provider,
            "features": {"versioning": features.versioning, "encryption": features.encryption,
                         "publicAccessBlock": features.public_access_block}}, opts)
        endpoint_args: dict[str, Any] = {}
        if spec.endpoint:
            endpoint_args = dict(endpoints=[aws.ProviderEndpointArgs(s3=spec.endpoint)], s3_use_path_style=True,
                                 skip_credentials_validation=True, skip_requesting_account_id=True,
                                 skip_region_validation=True, skip_metadata_api_check=True)
        self.provider = aws.Provider(
            f"{name}-s3", region=spec.region,
            access_key=pulumi.Output.secret(access_key_id) if access_key_id is not None else None,
            secret_key=pulumi.Output.secret(secret_access_key) if secret_access_key is not None else None,
            **endpoint_args, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)

        # Holds the only off-site copy of every database: never deleted by `pulumi destroy` or a rename.
        bucket = aws.s3.Bucket(f"{name}-bucket", bucket=spec.bucket,
                               opts=pulumi.ResourceOptions.merge(
                                   child, pulumi.ResourceOptions(protect=True, retain_on_delete=True,
                                                                 depends_on=depends_on(opts))))
        depends: list[pulumi.Resource] = []
        if features.versioning:
            depends.append(aws.s3.BucketVersioning(
                f"{name}-versioning", bucket=bucket.id,
                versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
                opts=child))
        if features.encryption:
            aws.s3.BucketServerSideEncryptionConfiguration(
                f"{name}-encryption", bucket=bucket.id,
                rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=aws.s3
                    .BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                        sse_algorithm="AES256"))],
                opts=child)
        if features.public_access_block:
            aws.s3.BucketPublicAccessBlock(
                f"{name}-public-access-block", bucket=bucket.id, block_public_acls=True,
                block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        self.lifecycle_rules = render_lifecycle_rules(spec)
        # Noncurrent-version rules need versioning to exist first (S3 validates the combination).
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle", bucket=bucket.id,
            rules=[lifecycle_rule_args(r) for r in self.lifecycle_rules],
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=depends)))

        self.bucket_name: pulumi.Output[str] = bucket.bucket
        self.endpoint: str | None = spec.endpoint
        self.region: str = spec.region
        self.register_outputs({"bucketName": self.bucket_name, "endpoint": spec.endpoint})
