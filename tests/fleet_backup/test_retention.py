"""keepLast: count retention after each successful run, against moto's S3 server."""
from __future__ import annotations

from backup_env import env, ok, pg, qdrant, run_ids, s3, s3_endpoint  # noqa: F401


def keys_under(s3, env: dict[str, str], prefix: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"], Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_keep_last_prunes_older_runs_but_keeps_the_newest_verified_one_and_runs_in_progress(env, s3):
    env = {**env, "BACKUP_KEEP_LAST": "2"}
    in_progress = "20000101T000000.000000Z"  # no manifest yet: maybe still being written
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{in_progress}/postgres/chat.dump", Body=b"x")
    ok(env, "backup")
    ok(env, "backup")
    first, second = sorted(run_ids(env))
    ok(env, "verify", "--backup", first)

    ok(env, "backup")  # keeps the newest two, and the first: the newest verified run
    third = max(run_ids(env))
    assert run_ids(env) == [third, second, first]

    ok(env, "verify", "--backup", third)
    ok(env, "backup")
    fourth = max(run_ids(env))
    assert run_ids(env) == [fourth, third]
    for gone in (first, second):
        assert keys_under(s3, env, f"backups/prod/{gone}/") == []
    assert keys_under(s3, env, f"backups/prod/{in_progress}/") == [f"backups/prod/{in_progress}/postgres/chat.dump"]


def test_without_keep_last_nothing_is_pruned(env):
    for _ in range(3):
        ok(env, "backup")
    assert len(run_ids(env)) == 3


def test_with_object_lock_neither_the_jobs_keys_nor_keep_last_can_delete_a_run_early(env, s3):
    from botocore.exceptions import ClientError

    from components.config import parse_backup
    from components.render.lifecycle import render_object_lock

    bucket = env["BACKUP_S3_BUCKET"] + "-locked"
    s3.create_bucket(Bucket=bucket, ObjectLockEnabledForBucket=True)
    lock = render_object_lock(parse_backup({"bucket": "b-ok", "lockDays": 3}))  # what BackupBucket declares
    s3.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration=lock)
    env = {**env, "BACKUP_S3_BUCKET": bucket, "BACKUP_KEEP_LAST": "1", "BACKUP_S3_OBJECT_LOCK": "true"}
    ok(env, "backup")
    (first,) = run_ids(env)
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"backups/prod/{first}/")["Versions"]
    head = s3.head_object(Bucket=bucket, Key=versions[0]["Key"], VersionId=versions[0]["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    for version in versions:
        try:
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied"
        else:
            raise AssertionError(f"deleted locked version of {version['Key']}")

    ok(env, "backup")  # keepLast 1 "deletes" the first run: delete markers only, every version stays
    assert len(run_ids(env)) == 1
    kept = s3.list_object_versions(Bucket=bucket, Prefix=f"backups/prod/{first}/")["Versions"]
    assert sorted((v["Key"], v["VersionId"]) for v in kept) == sorted((v["Key"], v["VersionId"]) for v in versions)
