"""Backup and restore with real application data: the job the plan declares, run in its own container's
namespace and environment, against the live fleet."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid

import boto3

from tests.realfleet import netns
from tests.realfleet.client import Api

APP = "chat"


def _fleet_backup(fleet, *args: str) -> str:
    """`docker exec openwebui-backup python -m fleet_backup ...` (the README's day-2 commands)."""
    done = fleet.exec(fleet.resource("openwebui-backup"), [sys.executable, "-m", "fleet_backup", *args], timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _files_bucket(fleet):
    env = fleet.env(fleet.resource("openwebui-backup"))
    s3 = boto3.client("s3", endpoint_url=f"http://{fleet.data['nodes']['shared']['address']}:9000",
                      region_name=env["FILES_S3_REGION"], aws_access_key_id=env["FILES_AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["FILES_AWS_SECRET_ACCESS_KEY"])
    return s3, env["FILES_S3_BUCKET"]


def _restart_app(fleet, app: str) -> None:
    """The migrating replica first, the others once it is healthy: the plan's order."""
    replicas = fleet.data["apps"][app]["replicas"]
    for first in (r for r in replicas if r["migrates"]):
        fleet.runner.run_process(first["resource"])
    others = [threading.Thread(target=fleet.runner.run_process, args=(r["resource"],))
              for r in replicas if not r["migrates"]]
    for t in others:
        t.start()
    for t in others:
        t.join()
    for r in replicas:
        assert fleet.runner.healthy(r["resource"]), r["resource"]


def test_users_chats_and_file_bytes_come_back_after_the_database_and_files_are_lost(fleet) -> None:
    admin = fleet.admin(APP)
    user = {"name": "restored user", "email": f"user-{uuid.uuid4().hex[:8]}@chat.rf.test",
            "password": "restore-me-please-1", "role": "user"}
    assert admin.post("/api/v1/auths/add", json=user).status_code == 200
    chat = admin.post("/api/v1/chats/new", json={"chat": {"title": "kept by the backup", "messages": []}}).json()
    content = os.urandom(200_000)
    file_id = admin.post("/api/v1/files/", files={"file": ("kept.bin", content, "application/octet-stream")},
                         params={"process": "false"}).json()["id"]

    _fleet_backup(fleet, "backup")

    # Lose everything of the app: replicas stopped, database dropped, files deleted.
    for r in fleet.data["apps"][APP]["replicas"]:
        fleet.runner.stop(r["resource"])
    bootstrap = fleet.resource(f"openwebui-{APP}-database")
    pg = fleet.env(bootstrap)
    drop = fleet.exec(bootstrap, ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-c",
                                        f'DROP DATABASE "{pg["APP_DB"]}" WITH (FORCE)'])
    assert drop.returncode == 0, drop.stderr
    s3, bucket = _files_bucket(fleet)
    lost = s3.list_objects_v2(Bucket=bucket, Prefix=f"apps/{APP}/").get("Contents", [])
    assert lost
    s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": o["Key"]} for o in lost]})

    # `pulumi up` re-runs the database step (an empty database), then the restore, then the replicas.
    fleet.runner.run_process(bootstrap)
    _fleet_backup(fleet, "restore", "--app", APP)
    _restart_app(fleet, APP)

    # The report's role reads the restored database's report columns, and still no credential.
    as_analytics = {**pg, "PGUSER": pg["APP_ANALYTICS_ROLE"], "PGPASSWORD": pg["APP_ANALYTICS_PASSWORD"],
                    "PGDATABASE": pg["APP_DB"]}
    namespace = fleet.runner.runtime["containers"][bootstrap]["namespace"]

    def as_report(query: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(netns.in_ns(namespace, ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-tAc", query]),
                              env=as_analytics, capture_output=True, text=True)
    users = as_report('SELECT count(*) FROM "user"')
    assert users.returncode == 0 and int(users.stdout) >= 2, users.stderr
    for query in ("SELECT * FROM auth", "SELECT content FROM chat_message"):
        denied = as_report(query)
        assert denied.returncode != 0 and "permission denied" in denied.stderr, query

    signed_in = Api(fleet.url(APP))
    assert signed_in.signin(user["email"], user["password"])["name"] == user["name"]
    assert chat["id"] in [c["id"] for c in admin.get("/api/v1/chats/").json()]
    for url in [fleet.url(APP), *fleet.replicas(APP).values()]:
        got = admin.as_user(url).get(f"/api/v1/files/{file_id}/content")
        assert got.status_code == 200 and got.content == content, url
