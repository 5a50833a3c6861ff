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
