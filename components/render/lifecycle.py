"""S3 lifecycle rules for the backup bucket, as plain dicts in the S3 API shape.

The same dicts feed `BackupBucket` (converted to pulumi-aws args) and boto3's
`put_bucket_lifecycle_configuration` in the tests, so what is deployed is what is tested.
"""
from __future__ import annotations

from typing import Any

from components.config import BackupSpec


def render_lifecycle_rules(backup: BackupSpec) -> list[dict[str, Any]]:
    """One rule per retention entry; parts the provider lacks (versions, transitions) are left out."""
    rules: list[dict[str, Any]] = []
    for r in backup.retention:
        rule: dict[str, Any] = {
            "ID": r.rule_id,
            "Filter": {"Prefix": r.prefix},
            "Status": "Enabled",
            "Expiration": {"Days": r.days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": r.abort_multipart_days},
        }
        if r.noncurrent_days is not None and backup.features.versioning:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": r.noncurrent_days}
        if r.transitions and backup.features.transitions:
            rule["Transitions"] = [{"Days": t.days, "StorageClass": t.storage_class} for t in r.transitions]
        rules.append(rule)
    return rules
