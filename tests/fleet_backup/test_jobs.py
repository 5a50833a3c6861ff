"""fleet_backup against a real PostgreSQL, moto's real S3 server and a Qdrant stub (see qdrant_stub)."""
from __future__ import annotations

import base64
import fcntl
import hashlib
import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from appdata import drop_database, fingerprint
from backup_env import (bucket_contents, dbs, delete_apps_files, drop_app_databases, env, files_env, in_process,  # noqa: F401
                        job, ok, pg, qdrant, run_ids, s3, s3_endpoint)
from realservices import wait_until


def test_restore_after_dropping_databases_brings_back_every_row_and_sequence(pg, env, s3):
    before = {db: fingerprint(pg, db) for db in dbs()}
    result = ok(env, "backup")
    for secret in (pg.password, "testing", env["QDRANT_API_KEY"]):
        assert secret not in result.stderr
    for db in dbs():
        drop_database(pg, db)

    ok(env, "restore", "--backup", "latest")

    assert {db: fingerprint(pg, db) for db in dbs()} == before
    assert before["openwebui_chat"]["owners"] == ["openwebui_chat"]
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        max_id = conn.execute("SELECT max(id) FROM messages").fetchone()[0]
        new_id = conn.execute("INSERT INTO messages (user_id, body) VALUES (1, 'after') RETURNING id").fetchone()[0]
        assert new_id == max_id + 1
        assert conn.execute("SELECT nextval('invoice_no')").fetchone()[0] == 1005


def test_backup_stores_each_objects_sha256_as_metadata_and_in_the_manifest(env, s3):
    ok(env, "backup")
    bucket = env["BACKUP_S3_BUCKET"]
    (run,) = run_ids(env)
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    keys = sorted(o["key"] for o in manifest["objects"])
    assert keys == ["postgres/chat.dump", "postgres/docs-team.dump", "postgres/roles.sql",
                    "qdrant/chat_knowledge.snapshot", "qdrant/docs-team_files.snapshot"]
    for o in manifest["objects"]:
        head = s3.head_object(Bucket=bucket, Key=f"backups/prod/{run}/{o['key']}")
        assert head["Metadata"]["sha256"] == o["sha256"] and head["ContentLength"] == o["size"]
    roles = s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/postgres/roles.sql")["Body"].read().decode()
    assert "openwebui_chat" in roles and "SCRAM-SHA-256" not in roles  # passwords stripped


def test_restore_replaces_rows_and_drops_tables_added_after_the_backup(pg, env):
    ok(env, "backup")
    before = fingerprint(pg, "openwebui_chat")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("DELETE FROM messages WHERE id % 2 = 0")
        conn.execute("CREATE TABLE added_later (x int)")
    other_app = fingerprint(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_docs_team")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('kept', '{}')")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    assert fingerprint(pg, "openwebui_chat") == before
    assert fingerprint(pg, "openwebui_docs_team") != other_app  # --app chat leaves docs-team alone


def test_corrupted_dump_makes_restore_refuse_naming_the_object_and_changing_nothing(pg, env, s3, qdrant):
    ok(env, "backup")
    (run,) = run_ids(env)
    bad_key = f"backups/prod/{run}/postgres/docs-team.dump"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=bad_key, Body=b"not a dump")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker after backup', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    _, state = qdrant
    state.collections["chat_knowledge"] = b"changed after backup"

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6
    assert f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{bad_key}" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked
    assert state.collections["chat_knowledge"] == b"changed after backup"
    assert not any("upload" in call for call in state.calls)


def test_qdrant_collections_of_the_apps_are_snapshotted_and_restored(env, qdrant):
    _, state = qdrant
    original = dict(state.collections)
    ok(env, "backup")
    assert not state.snapshots  # snapshots are deleted from Qdrant once downloaded
    state.collections["chat_knowledge"] = b"lost"
    del state.collections["docs-team_files"]
    ok(env, "restore")
    assert state.collections == original
    assert not any("other_x" in call for call in state.calls)  # not an app's collection


def test_backup_is_refused_while_another_run_holds_the_lock_file(env, s3):
    with open(env["BACKUP_LOCK_FILE"], "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = job(env, "backup")
    assert result.returncode == 3
    assert "another backup or restore is running" in result.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"])


def test_backup_is_refused_while_another_hosts_lock_object_is_fresh_and_runs_once_it_is_stale(env, s3):
    lock = {"host": "some-other-host", "pid": 1, "command": "backup"}
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key="backups/prod/.lock", Body=json.dumps(lock).encode())
    result = job(env, "backup")
    assert result.returncode == 3 and "some-other-host" in result.stderr
    assert run_ids(env) == []
    # A crashed holder's lock counts as stale once older than BACKUP_LOCK_STALE_SECONDS.
    head = s3.head_object(Bucket=env["BACKUP_S3_BUCKET"], Key="backups/prod/.lock")
    wait_until(lambda: datetime.now(UTC) - head["LastModified"] > timedelta(seconds=1), 5,
               "lock object older than 1 s")
    ok({**env, "BACKUP_LOCK_STALE_SECONDS": "1"}, "backup")
    assert len(run_ids(env)) == 1
    assert "Contents" not in s3.list_objects_v2(Bucket=env["BACKUP_S3_BUCKET"], Prefix="backups/prod/.lock")


def test_list_shows_only_backups_with_a_manifest_newest_first_and_latest_restores_the_newest(pg, env, s3):
    ok(env, "backup")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('in second backup', '{}')")
    second_state = fingerprint(pg, "openwebui_chat")
    ok(env, "backup")
    incomplete = "29990101T000000.000000Z"  # newer than both, but no manifest: a crashed run
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=f"backups/prod/{incomplete}/postgres/chat.dump",
                  Body=b"partial")
    runs = run_ids(env)
    assert len(runs) == 2 and runs == sorted(runs, reverse=True) and incomplete not in runs
    drop_database(pg, "openwebui_chat")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")  # latest is the default
    assert fingerprint(pg, "openwebui_chat") == second_state
    refused = job(env, "restore", "--backup", incomplete)
    assert refused.returncode == 6 and "has no manifest.json" in refused.stderr


def test_restore_is_refused_before_any_change_when_an_app_role_is_missing(pg, env):
    ok(env, "backup")
    drop_database(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(), autocommit=True) as admin:
        admin.execute("DROP ROLE openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    result = job(env, "restore")
    assert result.returncode == 6 and "openwebui_docs_team do not exist" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked


def test_failing_pg_dump_exits_with_dump_failed_and_writes_no_manifest(env):
    result = job({**env, "BACKUP_APPS": "chat,missing-app", "APP_DB_PASSWORD_MISSING_APP": "x"}, "backup")
    assert result.returncode == 4 and "pg_dump of openwebui_missing_app failed" in result.stderr
    assert run_ids(env) == []


def test_restore_after_deleting_files_and_dropping_databases_brings_back_every_file_byte_for_byte(
        pg, files_env, s3):
    env, original = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    before = {db: fingerprint(pg, db) for db in dbs()}
    result = ok(env, "backup")
    assert "files-secret-value" not in result.stderr and "files-key-id" not in result.stderr
    delete_apps_files(s3, files_bucket)
    drop_app_databases(pg)

    result = ok(env, "restore")

    assert "files-secret-value" not in result.stderr
    assert bucket_contents(s3, files_bucket) == original
    assert {db: fingerprint(pg, db) for db in dbs()} == before


def test_backup_copies_each_apps_files_under_files_app_with_their_sha256_in_the_manifest(files_env, s3):
    env, original = files_env
    ok(env, "backup")
    (run,) = run_ids(env)
    bucket = env["BACKUP_S3_BUCKET"]
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    stored = {o["key"]: o for o in manifest["objects"] if o["kind"] == "file"}
    expected = {"files/chat/3f2a_report.pdf": "apps/chat/3f2a_report.pdf",
                "files/chat/nested/deep/dir/notes ünïcode.txt": "apps/chat/nested/deep/dir/notes ünïcode.txt",
                "files/chat/9c1e_recording.bin": "apps/chat/9c1e_recording.bin",
                "files/docs-team/a1_manual.docx": "apps/docs-team/a1_manual.docx",
                "files/docs-team/empty.txt": "apps/docs-team/empty.txt"}
    assert set(stored) == set(expected)  # not chat-2's prefix, not keys outside any app's prefix
    for key, source in expected.items():
        body = original[source]
        assert stored[key]["sha256"] == hashlib.sha256(body).hexdigest() and stored[key]["size"] == len(body)
        obj = s3.get_object(Bucket=bucket, Key=f"backups/prod/{run}/{key}")
        assert obj["Body"].read() == body and obj["Metadata"]["sha256"] == stored[key]["sha256"]
    assert manifest["files"] == {"bucket": env["FILES_S3_BUCKET"],
                                 "prefixes": {"chat": "apps/chat/", "docs-team": "apps/docs-team/"}}


def test_corrupted_file_in_the_backup_makes_restore_refuse_naming_it_and_changing_no_database_or_file(
        pg, files_env, s3):
    env, _ = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    ok(env, "backup")
    (run,) = run_ids(env)
    bad_key = f"backups/prod/{run}/files/docs-team/a1_manual.docx"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=bad_key, Body=b"tampered")
    s3.delete_object(Bucket=files_bucket, Key="apps/chat/3f2a_report.pdf")
    s3.put_object(Bucket=files_bucket, Key="apps/chat/nested/deep/dir/notes ünïcode.txt", Body=b"edited later")
    drop_database(pg, "openwebui_docs_team")
    with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
        conn.execute("INSERT INTO users (name, settings) VALUES ('marker after backup', '{}')")
    marked = fingerprint(pg, "openwebui_chat")
    files_before = bucket_contents(s3, files_bucket)

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6
    assert f"checksum mismatch for s3://{env['BACKUP_S3_BUCKET']}/{bad_key}" in result.stderr
    assert fingerprint(pg, "openwebui_chat") == marked
    with psycopg.connect(pg.dsn()) as admin:
        assert not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_docs_team'").fetchone()
    assert bucket_contents(s3, files_bucket) == files_before


def test_files_uploaded_after_the_backup_stay_on_restore_unless_prune_files_and_only_chosen_apps_change(
        files_env, s3):
    env, original = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    ok(env, "backup")
    later = {"apps/chat/uploaded-later.txt": b"new", "apps/docs-team/uploaded-later.txt": b"new too",
             "apps/docs-team/a1_manual.docx": b"docs-team edited later"}
    for key, body in {**later, "apps/chat/3f2a_report.pdf": b"chat edited later"}.items():
        s3.put_object(Bucket=files_bucket, Key=key, Body=body)

    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    assert bucket_contents(s3, files_bucket) == {**original, **later}  # chat's same key restored, extra kept

    ok(env, "restore", "--app", "chat", "--skip-qdrant", "--prune-files")
    del later["apps/chat/uploaded-later.txt"]  # only chat's extra goes; docs-team, chat-2, others untouched
    assert bucket_contents(s3, files_bucket) == {**original, **later}


def _count_requests(monkeypatch) -> Counter[str]:
    """S3 operations the job's files clients send, by name (a botocore event on each client)."""
    import fleet_backup.files
    counted: Counter[str] = Counter()
    make = fleet_backup.files.s3_client

    def counting(*args, **kwargs):
        client = make(*args, **kwargs)
        client.meta.events.register("before-call.s3", lambda model, **_: counted.update([model.name]))
        return client

    monkeypatch.setattr(fleet_backup.files, "s3_client", counting)
    return counted


def test_prune_files_deletes_up_to_a_thousand_keys_per_request(files_env, s3, monkeypatch):
    env, original = files_env
    files_bucket = env["FILES_S3_BUCKET"]
    ok(env, "backup")
    for i in range(1001):
        s3.put_object(Bucket=files_bucket, Key=f"apps/chat/later/{i:04d}.txt", Body=b"uploaded after the backup")
    requests = _count_requests(monkeypatch)

    in_process(monkeypatch, env, "restore", apps=["chat"], skip_qdrant=True, prune_files=True)

    assert (requests["DeleteObjects"], requests["DeleteObject"]) == (2, 0)
    assert bucket_contents(s3, files_bucket) == original


def test_a_key_prune_files_cannot_delete_fails_the_restore_naming_the_prefix_and_count(s3_endpoint):
    from botocore.stub import Stubber
    from fleet_backup.errors import RESTORE_FAILED, JobError
    from fleet_backup.files import FileStore
    from fleet_backup.settings import App, FilesSource
    files = FileStore(FilesSource("uploads", s3_endpoint, "us-east-1", "apps/{app}/"),
                      {"FILES_AWS_ACCESS_KEY_ID": "files-key-id", "FILES_AWS_SECRET_ACCESS_KEY": "files-secret-value"})
    with Stubber(files.s3) as stub:
        # What S3 (and MinIO) answer when a key is refused: HTTP 200, the refusal in the body.
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "apps/chat/b.txt", "Code": "AccessDenied", "Message": "Access Denied."}]})
        with pytest.raises(JobError) as refused:
            files.delete(App("chat"), ["a.txt", "b.txt"])
    assert refused.value.code == RESTORE_FAILED
    assert "2 keys under s3://uploads/apps/chat/: 1 deleted, 1 not deleted (AccessDenied; first: b.txt)" \
        in str(refused.value)
    assert "files-secret-value" not in str(refused.value)


def _file_store(s3_endpoint):
    from fleet_backup.files import FileStore
    from fleet_backup.settings import FilesSource
    return FileStore(FilesSource("uploads", s3_endpoint, "us-east-1", "apps/{app}/"),
                     {"FILES_AWS_ACCESS_KEY_ID": "files-key-id", "FILES_AWS_SECRET_ACCESS_KEY": "files-secret-value"})


def _delete_requests(client) -> list[list[str]]:
    """The keys of each DeleteObjects request the client sends (the Stubber answers after this event)."""
    sent: list[list[str]] = []
    client.meta.events.register("before-parameter-build.s3.DeleteObjects",
                                lambda params, **_: sent.append([o["Key"] for o in params["Delete"]["Objects"]]))
    return sent


def test_a_key_refused_with_internal_error_is_sent_again_alone_and_the_delete_succeeds(s3_endpoint, monkeypatch):
    """DeleteObjects answers 200 with per-key errors, which botocore never retries (boto/boto3#3052)."""
    from botocore.stub import Stubber
    from fleet_backup.settings import App
    monkeypatch.setattr("fleet_backup.store.DELETE_RETRY_DELAYS", (0.0, 0.0, 0.0), raising=False)
    files = _file_store(s3_endpoint)
    sent = _delete_requests(files.s3)
    with Stubber(files.s3) as stub:
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "apps/chat/b.txt", "Code": "InternalError", "Message": "We encountered an internal error."}]})
        stub.add_response("delete_objects", {})
        files.delete(App("chat"), ["a.txt", "b.txt", "c.txt"])
        stub.assert_no_pending_responses()
    assert sent == [["apps/chat/a.txt", "apps/chat/b.txt", "apps/chat/c.txt"], ["apps/chat/b.txt"]]


def test_a_key_still_refused_after_three_resends_fails_the_delete(s3_endpoint, monkeypatch):
    from botocore.stub import Stubber
    from fleet_backup.errors import JobError
    from fleet_backup.settings import App
    monkeypatch.setattr("fleet_backup.store.DELETE_RETRY_DELAYS", (0.0, 0.0, 0.0), raising=False)
    files = _file_store(s3_endpoint)
    sent = _delete_requests(files.s3)
    with Stubber(files.s3) as stub:
        for _ in range(4):
            stub.add_response("delete_objects", {"Errors": [
                {"Key": "apps/chat/b.txt", "Code": "SlowDown", "Message": "Please reduce your request rate."}]})
        with pytest.raises(JobError) as refused:
            files.delete(App("chat"), ["a.txt", "b.txt"])
    assert sent == [["apps/chat/a.txt", "apps/chat/b.txt"]] + [["apps/chat/b.txt"]] * 3
    assert "2 keys under s3://uploads/apps/chat/: 1 deleted, 1 not deleted (SlowDown; first: b.txt)" \
        in str(refused.value)


def test_an_access_denied_key_fails_at_once_counting_the_keys_earlier_batches_deleted(s3_endpoint):
    from botocore.stub import Stubber
    from fleet_backup.errors import RESTORE_FAILED, JobError
    from fleet_backup.settings import App
    files = _file_store(s3_endpoint)
    sent = _delete_requests(files.s3)
    relatives = [f"{i:04}.txt" for i in range(1001)]
    with Stubber(files.s3) as stub:
        stub.add_response("delete_objects", {})
        stub.add_response("delete_objects", {"Errors": [
            {"Key": "apps/chat/1000.txt", "Code": "AccessDenied", "Message": "Access Denied."}]})
        with pytest.raises(JobError) as refused:
            files.delete(App("chat"), relatives)
    assert [len(keys) for keys in sent] == [1000, 1]  # no resend of the refused key
    assert refused.value.code == RESTORE_FAILED
    assert str(refused.value) == ("deleting 1001 keys under s3://uploads/apps/chat/: 1000 deleted, 1 not deleted "
                                  "(AccessDenied; first: 1000.txt)")


def test_delete_run_fails_when_a_key_of_the_run_is_refused(s3_endpoint):
    from botocore.stub import Stubber
    from fleet_backup.errors import UPLOAD_FAILED, JobError
    from fleet_backup.settings import Settings
    from fleet_backup.store import BackupStore
    store = BackupStore(Settings.from_env({"BACKUP_STACK": "prod", "BACKUP_APPS": "chat", "BACKUP_S3_BUCKET": "b",
                                           "BACKUP_S3_ENDPOINT": s3_endpoint}), b"k" * 32)
    run = store.run_prefix("20260101T000000Z")
    with Stubber(store.s3) as stub:
        stub.add_response("delete_object", {}, {"Bucket": "b", "Key": run + "manifest.json"})
        stub.add_response("list_objects_v2", {"Contents": [{"Key": run + "chat.dump"}, {"Key": run + "chat.qdrant"}]})
        stub.add_response("delete_objects", {"Errors": [
            {"Key": run + "chat.qdrant", "Code": "AccessDenied", "Message": "Access Denied."}]})
        with pytest.raises(JobError) as refused:
            store.delete_run("20260101T000000Z")
    assert refused.value.code == UPLOAD_FAILED
    assert f"2 keys under s3://b/{run}: 1 deleted, 1 not deleted (AccessDenied; first: chat.qdrant)" \
        in str(refused.value)


def test_delete_objects_sends_content_md5_which_minio_before_2025_requires(s3_endpoint, s3):
    """botocore (1.36 on) sends a CRC32 header instead; MinIO before RELEASE.2025-01-20 (the fleet's pinned
    one) answers MissingContentMD5 without it."""
    from fleet_backup.store import s3_client
    client = s3_client(s3_endpoint, "us-east-1", "testing", "testing")
    sent = []
    client.meta.events.register("before-send.s3.DeleteObjects", lambda request, **_: sent.append(request))
    s3.create_bucket(Bucket="md5-check")
    s3.put_object(Bucket="md5-check", Key="doomed.txt", Body=b"x")

    assert client.delete_objects(Bucket="md5-check", Delete={"Objects": [{"Key": "doomed.txt"}], "Quiet": True}
                                 ).get("Errors") is None

    (request,) = sent
    md5 = request.headers["Content-MD5"]
    assert (md5.decode() if isinstance(md5, bytes) else md5) == base64.b64encode(hashlib.md5(request.body).digest()).decode()
    assert "Contents" not in s3.list_objects_v2(Bucket="md5-check")


def test_without_files_s3_bucket_files_are_neither_backed_up_nor_touched_by_restore(files_env, s3):
    with_files, original = files_env
    env = {k: v for k, v in with_files.items() if not k.startswith("FILES_")}
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = json.loads(s3.get_object(Bucket=env["BACKUP_S3_BUCKET"],
                                        Key=f"backups/prod/{run}/manifest.json")["Body"].read())
    assert "files" not in manifest and all(o["kind"] != "file" for o in manifest["objects"])
    s3.delete_object(Bucket=with_files["FILES_S3_BUCKET"], Key="apps/chat/3f2a_report.pdf")
    left = bucket_contents(s3, with_files["FILES_S3_BUCKET"])
    ok(with_files, "restore")  # a backup without files: FILES_S3_BUCKET at restore changes nothing
    assert bucket_contents(s3, with_files["FILES_S3_BUCKET"]) == left
    refused = job(with_files, "restore", "--prune-files")
    assert refused.returncode == 2 and "has no files to restore" in refused.stderr


def test_restore_of_a_backup_with_files_needs_files_s3_bucket_or_skip_files(pg, files_env, s3):
    with_files, _ = files_env
    ok(with_files, "backup")
    env = {k: v for k, v in with_files.items() if not k.startswith("FILES_")}
    refused = job(env, "restore")
    assert refused.returncode == 2 and "FILES_S3_BUCKET is not set" in refused.stderr
    drop_database(pg, "openwebui_chat")
    ok(env, "restore", "--skip-files")
    with psycopg.connect(pg.dsn()) as admin:
        assert admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_chat'").fetchone()


def test_files_prefix_overlapping_the_backups_in_the_same_bucket_is_a_config_error(env):
    same_bucket = {"FILES_S3_BUCKET": env["BACKUP_S3_BUCKET"], "FILES_S3_ENDPOINT": env["BACKUP_S3_ENDPOINT"]}
    result = job({**env, **same_bucket, "FILES_S3_PREFIX_TEMPLATE": "{app}/", "BACKUP_S3_PREFIX": "chat/backups/"},
                 "backup")
    assert result.returncode == 2 and "gives 'chat/' for app chat, which overlaps BACKUP_S3_PREFIX" in result.stderr
    assert job({**env, **same_bucket}, "list").returncode == 0  # apps/<app>/ beside backups/prod/ is fine


@pytest.mark.parametrize(("change", "message"), [
    ({"BACKUP_STACK": ""}, "BACKUP_STACK is not set"),
    ({"FILES_S3_BUCKET": "uploads", "FILES_S3_PREFIX_TEMPLATE": "apps/{app}"},
     "FILES_S3_PREFIX_TEMPLATE='apps/{app}' must contain {app}, end in '/'"),
    ({"FILES_S3_BUCKET": "uploads", "FILES_AWS_ACCESS_KEY_ID": "k"}, "FILES_AWS_SECRET_ACCESS_KEY is not"),
    ({"FILES_S3_ENDPOINT": "http://minio:9000"}, "FILES_S3_ENDPOINT set but FILES_S3_BUCKET is not"),
    ({"BACKUP_APPS": "Chat"}, "BACKUP_APPS: 'Chat' is not an app name"),
    ({"BACKUP_S3_PREFIX": "/abs/"}, "BACKUP_S3_PREFIX='/abs/'"),
    ({"PGHOST": ""}, "PGHOST is not set"),
    ({"APP_DB_PASSWORD_DOCS_TEAM": ""}, "APP_DB_PASSWORD_DOCS_TEAM not set"),
])
def test_bad_environment_exits_with_config_error_naming_the_variable(env, change, message):
    result = job({**env, **change}, "backup")
    assert result.returncode == 2 and message in result.stderr
