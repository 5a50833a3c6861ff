"""The backup config model: defaults, and one readable message per rejected setting."""
from __future__ import annotations

import pytest

from components.config import ConfigError as BackupConfigError, parse_backup as load_backup_config

GOOD_RULE = {"prefix": "backups/prod/", "days": 30, "noncurrentDays": 7, "abortMultipartDays": 1,
             "transitions": [{"days": 7, "storageClass": "GLACIER_IR"}]}


def test_minimal_config_gets_aws_defaults_and_a_30_day_rule_for_all_backups():
    c = load_backup_config({"bucket": "openwebui-fleet-backups-prod"})
    assert (c.provider, c.endpoint, c.region, c.schedule) == ("aws", None, "us-east-1", "0 2 * * *")
    assert [(r.prefix, r.days, r.rule_id) for r in c.retention] == [("backups/", 30, "expire-backups")]


def test_camel_case_stack_keys_map_to_snake_case_attributes():
    c = load_backup_config({"bucket": "b-ok", "retention": [GOOD_RULE]})
    assert c.retention[0].noncurrent_days == 7 and c.retention[0].transitions[0].storage_class == "GLACIER_IR"


def test_minio_with_endpoint_is_accepted():
    c = load_backup_config({"bucket": "b-ok", "provider": "minio", "endpoint": "http://minio:9000",
                            "retention": [{"prefix": "backups/", "days": 14, "noncurrentDays": 3}]})
    assert c.features.versioning and not c.features.transitions


def _rule(**change):
    return {"bucket": "b-ok", "retention": [{**GOOD_RULE, **change}]}


@pytest.mark.parametrize(("raw", "key", "fragment"), [
    (_rule(days=0), "backup.retention[0].days", "0 must be greater than 0"),
    (_rule(noncurrentDays=-1), "backup.retention[0].noncurrentDays", "-1 must be greater than 0"),
    (_rule(abortMultipartDays=0), "backup.retention[0].abortMultipartDays", "0 must be greater than 0"),
    (_rule(days=7), "backup.retention[0].transitions[0].days", "7 is not before the expiration"),
    (_rule(transitions=[{"days": 7, "storageClass": "STANDARD_IA"}]),
     "backup.retention[0].transitions[0].days", "too early for STANDARD_IA"),
    (_rule(prefix="/backups/"), "backup.retention[0].prefix", "'/backups/' must be a folder"),
    (_rule(dayz=3), "backup.retention[0].dayz", "unknown key"),
    ({"bucket": "b-ok", "retention": [GOOD_RULE, {**GOOD_RULE, "prefix": "backups/prod/x/", "id": "two"}]},
     "backup.retention[1].prefix", "lies under retention[0].prefix 'backups/prod/'"),
    ({"bucket": "b-ok", "retention": [{"prefix": "a/", "days": 3, "id": "same"},
                                      {"prefix": "b/", "days": 3, "id": "same"}]},
     "backup.retention[1].id", "'same' is also the id of retention[0]"),
    ({"bucket": "b-ok", "retention": []}, "backup.retention", "is empty"),
    ({"bucket": "b-ok", "provider": "generic", "endpoint": "https://s3.example",
      "retention": [{"prefix": "backups/", "days": 30, "transitions": [{"days": 7, "storageClass": "GLACIER"}]}]},
     "backup.retention[0].transitions", "provider 'generic' does not support"),
    ({"bucket": "b-ok", "provider": "generic", "endpoint": "https://s3.example",
      "retention": [{"prefix": "backups/", "days": 30, "noncurrentDays": 3}]},
     "backup.retention[0].noncurrentDays", "has no versioning"),
    ({"bucket": "b-ok", "provider": "minio"}, "backup.endpoint", "missing for provider 'minio'"),
    ({"bucket": "b-ok", "provider": "generic", "endpoint": "s3.example"}, "backup.endpoint", "is not a URL"),
    ({"bucket": "b-ok", "endpoint": "https://s3.example"}, "backup.endpoint", "provider is 'aws'"),
    ({"bucket": "b-ok", "provider": "gcs"}, "backup.provider", "'aws', 'minio' or 'generic'"),
    ({"bucket": "b-ok", "schedule": "0 2 * *"}, "backup.schedule", "not a 5-field cron"),
    ({"bucket": "b-ok", "schedule": "0 25 * * *"}, "backup.schedule", "not a 5-field cron"),
    ({"bucket": "b-ok", "schedule": "0 0 2 * * *"}, "backup.schedule", "not a 5-field cron"),
    ({"bucket": "Backups_Prod"}, "backup.bucket", "'Backups_Prod' is not a valid S3 bucket name"),
    ({"bucket": "ab"}, "backup.bucket", "'ab' is not a valid S3 bucket name"),
    ({"bucket": "a..b"}, "backup.bucket", "not a valid S3 bucket name"),
    ({"bucket": "192.168.1.1"}, "backup.bucket", "looks like an IP address"),
    ({"bucket": "xn--bucket"}, "backup.bucket", "reserves"),
    ({}, "backup.bucket", "required key is missing"),
])
def test_bad_backup_setting_is_rejected_with_one_message_naming_the_key(raw, key, fragment):
    with pytest.raises(BackupConfigError) as err:
        load_backup_config(raw)
    message = str(err.value)
    assert message.startswith(key + ":"), message
    assert fragment in message and "\n" not in message
