"""Attacks on the backup job by a tenant (an app's own DB role) or by someone with write access to the bucket."""
from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import psycopg
import pytest

from appdata import app_password, drop_database, fingerprint
from backup_env import (SIGNING_KEY, bucket_contents, env, files_env, job, manifest_of, ok, pg,  # noqa: F401
                        qdrant, run_ids, s3, s3_endpoint, write_manifest)
from realservices import free_port, require_binary


def _plant_superuser_escalation(pg, app_db: str, marker: Path) -> None:
    """As the app's own role: a CHECK constraint whose function tries to leave the role it runs as."""
    with psycopg.connect(pg.dsn(app_db, app_password("chat"), app_db)) as conn:
        conn.execute(f"""
            CREATE FUNCTION public.guard(x int) RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN
              BEGIN
                RESET ROLE;
                EXECUTE 'ALTER ROLE {app_db} SUPERUSER';
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
              BEGIN
                RESET ROLE;
                EXECUTE 'COPY (SELECT 1) TO PROGRAM ''id > {marker}''';
              EXCEPTION WHEN OTHERS THEN NULL;
              END;
              RETURN true;
            END $f$;
            CREATE TABLE audit (x int CHECK (public.guard(x)));
            INSERT INTO audit VALUES (1), (2), (3);
        """)


def test_a_tenant_function_run_by_restore_cannot_make_its_role_superuser_or_run_a_program(pg, env):
    marker = Path(f"/tmp/fleet-pwned-{uuid.uuid4().hex}")
    _plant_superuser_escalation(pg, "openwebui_chat", marker)
    assert not marker.exists()  # as the tenant itself, the attack does nothing
    ok(env, "backup")
    try:
        ok(env, "restore", "--app", "chat", "--skip-qdrant")
        assert not marker.exists(), "restore ran a program as the database server's OS user"
        with psycopg.connect(pg.dsn()) as admin:
            assert admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = 'openwebui_chat'").fetchone() == (
                False,)
        with psycopg.connect(pg.dsn(dbname="openwebui_chat")) as conn:
            assert conn.execute("SELECT count(*) FROM audit").fetchone() == (3,)
    finally:
        marker.unlink(missing_ok=True)
        with psycopg.connect(pg.dsn(), autocommit=True) as admin:
            admin.execute("ALTER ROLE openwebui_chat NOSUPERUSER")


def test_another_apps_role_cannot_connect_to_a_restored_database(pg, env):
    ok(env, "backup")
    ok(env, "restore", "--app", "chat", "--skip-qdrant")
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(pg.dsn("openwebui_docs_team", app_password("docs-team"), "openwebui_chat")).close()
    psycopg.connect(pg.dsn("openwebui_chat", app_password("chat"), "openwebui_chat")).close()


@pytest.mark.parametrize(("signing_key", "message"), [
    (None, "is not signed"),
    ("a-key-the-attacker-made-up-0123456789abcdef", "does not match this stack's BACKUP_SIGNING_KEY"),
])
def test_a_dump_rewritten_with_its_manifest_and_metadata_is_refused_and_nothing_changes(
        pg, env, s3, signing_key, message):
    ok(env, "backup")
    (run,) = run_ids(env)
    forged = b"PGDMP forged dump"
    key = f"backups/prod/{run}/postgres/chat.dump"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key, Body=forged,
                  Metadata={"sha256": hashlib.sha256(forged).hexdigest()})
    manifest = manifest_of(s3, env, run)
    for entry in manifest["objects"]:
        if entry["key"] == "postgres/chat.dump":
            entry.update(sha256=hashlib.sha256(forged).hexdigest(), size=len(forged))
    write_manifest(s3, env, run, manifest, signing_key)
    drop_database(pg, "openwebui_docs_team")
    chat = fingerprint(pg, "openwebui_chat")

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6, result.stderr
    assert f"s3://{env['BACKUP_S3_BUCKET']}/backups/prod/{run}/manifest.json" in result.stderr
    assert message in result.stderr
    assert fingerprint(pg, "openwebui_chat") == chat
    with psycopg.connect(pg.dsn()) as admin:  # not even the app whose objects were left alone
        assert not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_docs_team'").fetchone()
    listed = job(env, "list")
    assert listed.returncode == 0 and listed.stdout == "" and f"skipping run {run}" in listed.stderr


@pytest.mark.parametrize(("entry", "message"), [
    ({"key": "files/chat/../research/pwned", "kind": "file", "app": "chat", "file": "../research/pwned"},
     "is not a plain relative key"),
    ({"key": "files/chat/x", "kind": "file", "app": "chat", "file": "../research/pwned"},
     "which leaves app chat's prefix"),
    ({"key": "/etc/cron.d/pwned", "kind": "file", "app": "chat", "file": "pwned"}, "is not a plain relative key"),
    ({"key": "files/docs-team/pwned", "kind": "file", "app": "chat", "file": "pwned"},
     "should be 'files/chat/pwned'"),
    ({"key": "qdrant/docs-team_files.snapshot", "kind": "qdrant", "app": "chat", "collection": "docs-team_files"},
     "which is not app chat's"),
    ({"key": "postgres/chat.dump", "kind": "postgres", "app": "chat", "database": "openwebui_docs_team"},
     "not app chat's"),
])
def test_a_signed_manifest_whose_entry_leaves_its_apps_prefix_is_refused_before_any_change(
        pg, files_env, s3, entry, message):
    env, _ = files_env
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = manifest_of(s3, env, run)
    body = b"planted"
    manifest["objects"].append({**entry, "sha256": hashlib.sha256(body).hexdigest(), "size": len(body)})
    write_manifest(s3, env, run, manifest, SIGNING_KEY)  # even signed with the real key
    files_before = bucket_contents(s3, env["FILES_S3_BUCKET"])
    drop_database(pg, "openwebui_chat")

    result = job(env, "restore", "--backup", run)

    assert result.returncode == 6, result.stderr
    assert message in result.stderr and "refusing the backup" in result.stderr
    assert bucket_contents(s3, env["FILES_S3_BUCKET"]) == files_before
    with psycopg.connect(pg.dsn()) as admin:
        assert not admin.execute("SELECT 1 FROM pg_database WHERE datname = 'openwebui_chat'").fetchone()


def test_a_signed_manifest_copied_under_another_run_id_is_refused(env, s3):
    ok(env, "backup")
    (run,) = run_ids(env)
    manifest = manifest_of(s3, env, run)
    other = "29990101T000000.000000Z"
    write_manifest(s3, env, other, manifest, SIGNING_KEY)
    result = job(env, "restore", "--backup", other)
    assert result.returncode == 6 and f"not of run '{other}'" in result.stderr


def test_without_a_signing_key_the_job_refuses_to_start(env):
    result = job({**env, "BACKUP_SIGNING_KEY": ""}, "backup")
    assert result.returncode == 2 and "BACKUP_SIGNING_KEY is not set" in result.stderr


def recording_client_tools(tmp_path: Path, env: dict[str, str]) -> tuple[dict[str, str], Path]:
    """PATH with pg_dump, pg_dumpall, pg_restore and psql wrapped: each call's argv goes to a file."""
    argv_log, wrappers = tmp_path / "argv.log", tmp_path / "wrappers"
    wrappers.mkdir()
    for tool in ("pg_dump", "pg_dumpall", "pg_restore", "psql"):
        wrapper = wrappers / tool
        wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "{tool} $*" >> {argv_log}\nexec {require_binary(tool)} "$@"\n')
        wrapper.chmod(0o755)
    return {**env, "PATH": f"{wrappers}:{env['PATH']}"}, argv_log


def test_no_secret_reaches_any_argv_log_line_or_error_message(pg, files_env, tmp_path):
    env, _ = files_env
    env = {**env, "AWS_ACCESS_KEY_ID": "AKIA-backup-key-id-7731", "AWS_SECRET_ACCESS_KEY": "backup-secret-9913"}
    env, argv_log = recording_client_tools(tmp_path, env)
    secrets = {name: value for name, value in env.items()
               if name in ("PGPASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FILES_AWS_ACCESS_KEY_ID",
                           "FILES_AWS_SECRET_ACCESS_KEY", "QDRANT_API_KEY", "BACKUP_SIGNING_KEY")
               or name.startswith("APP_DB_PASSWORD_")}
    assert len(secrets) == 9
    userinfo = f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}@"
    runs = [
        (env, ["backup"], 0), (env, ["list"], 0), (env, ["restore"], 0),
        (env, ["restore", "--backup", "19990101T000000.000000Z"], 6),
        ({**env, "QDRANT_URL": f"http://127.0.0.1:{free_port()}"}, ["backup"], 4),
        ({**env, "BACKUP_S3_ENDPOINT": f"http://127.0.0.1:{free_port()}"}, ["list"], 1),
        ({**env, "APP_DB_PASSWORD_CHAT": "a-wrong-password-for-chat"}, ["backup"], 4),
        ({**env, "BACKUP_S3_ENDPOINT": env["BACKUP_S3_ENDPOINT"].replace("://", "://" + userinfo)}, ["list"], 2),
        ({**env, "QDRANT_URL": env["QDRANT_URL"].replace("://", "://" + userinfo)}, ["backup"], 2),
    ]
    output = []
    for run_env, args, code in runs:
        result = job(run_env, *args)
        assert result.returncode == code, (args, result.stderr)
        output.append(result.stdout + result.stderr)
    text, argv = "\n".join(output), argv_log.read_text()
    assert "pg_dump " in argv and "pg_restore " in argv and "pg_dumpall " in argv
    assert "password authentication failed" in text  # the failures above were really reported
    for name, value in {**secrets, "wrong password": "a-wrong-password-for-chat"}.items():
        assert value not in text, f"{name} in the job's output"
        assert value not in argv, f"{name} in a client tool's argv"
