"""A real client through the LB: accounts, chats, files and websocket events across replicas; apps isolated."""
from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import urlsplit, urlunsplit

import boto3

from tests.realfleet import netns
from tests.realfleet.client import Api, socket_client

EVENT_TIMEOUT_S = 20


def test_the_first_signup_is_the_admin_and_later_ones_are_refused(fleet) -> None:
    """The runner signed up first (through the LB); Open WebUI closes sign-up once an admin exists."""
    assert fleet.data["apps"]["chat"]["admin"]["role"] == "admin"
    assert fleet.admin("chat").get("/api/v1/auths/").json()["role"] == "admin"
    r = Api(fleet.url("chat")).post("/api/v1/auths/signup", json={
        "name": "second", "email": f"second-{uuid.uuid4().hex[:8]}@chat.rf.test", "password": "a-long-password-1"})
    assert r.status_code == 403


def test_signing_in_through_the_lbs_hostname_gives_a_token_every_replica_accepts(fleet) -> None:
    admin = fleet.data["apps"]["chat"]["admin"]
    api = Api(fleet.url("chat"))
    assert api.signin(admin["email"], admin["password"])["role"] == "admin"
    for replica, url in fleet.replicas("chat").items():
        r = api.as_user(url).get("/api/v1/auths/")
        assert r.status_code == 200, replica
        assert r.json()["email"] == fleet.data["apps"]["chat"]["admin"]["email"]


def test_a_chat_created_on_one_replica_is_listed_on_another(fleet) -> None:
    api = fleet.admin("chat")
    urls = list(fleet.replicas("chat").values())
    title = f"created on {urls[0]}"
    created = api.as_user(urls[0]).post("/api/v1/chats/new", json={"chat": {"title": title, "messages": []}})
    assert created.status_code == 200
    listed = api.as_user(urls[-1]).get("/api/v1/chats/")
    assert created.json()["id"] in [c["id"] for c in listed.json()]


def s3_client(fleet):
    """The fleet's object storage as the replicas reach it (their own endpoint and keys)."""
    env = fleet.env("chat-node-a-1")
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], region_name=env["S3_REGION_NAME"],
                        aws_access_key_id=env["S3_ACCESS_KEY_ID"], aws_secret_access_key=env["S3_SECRET_ACCESS_KEY"])


def test_an_upload_through_the_lb_lands_under_the_apps_prefix_and_downloads_byte_equal_elsewhere(fleet) -> None:
    api = fleet.admin("chat")
    content = os.urandom(300_000)
    r = api.post("/api/v1/files/", files={"file": ("notes.bin", content, "application/octet-stream")},
                 params={"process": "false"})
    assert r.status_code == 200, r.text
    file_id = r.json()["id"]
    s3 = s3_client(fleet)
    bucket = fleet.env("chat-node-a-1")["S3_BUCKET_NAME"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="apps/chat/").get("Contents", [])]
    key = f"apps/chat/{file_id}_notes.bin"  # the README's contract: each app's files under apps/<app>/
    assert key in keys
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == content
    for replica, url in fleet.replicas("chat").items():
        got = api.as_user(url).get(f"/api/v1/files/{file_id}/content")
        assert got.status_code == 200 and got.content == content, replica


def _note(api: Api, title: str) -> str:
    r = api.post("/api/v1/notes/create", json={"title": title, "data": {"content": {"md": title}}})
    assert r.status_code == 200, r.text
    return r.json()["id"]


def _update(api: Api, note_id: str, title: str) -> None:
    r = api.post(f"/api/v1/notes/{note_id}/update", json={"title": title, "data": {"content": {"md": title}}})
    assert r.status_code == 200, r.text


def assert_edits_on_every_replica_reach_one_socket(fleet, title: str) -> None:
    """A client's socket through the LB is held by one replica; a note edited on each replica in turn
    must reach it, so at least two of these events crossed replicas through Redis."""
    api = fleet.admin("chat")
    note = _note(api, title)
    client, events = socket_client(fleet.url("chat"), api.token)
    try:
        client.call("join-note", {"note_id": note, "auth": {"token": api.token}}, timeout=EVENT_TIMEOUT_S)
        for replica, url in fleet.replicas("chat").items():
            _update(api.as_user(url), note, f"edited on {replica}")
            assert events.wait_for(lambda e, d, r=replica: e == "events:note" and d["title"] == f"edited on {r}",
                                   EVENT_TIMEOUT_S), replica
    finally:
        client.disconnect()


def test_a_websocket_client_through_the_lb_gets_events_that_other_replicas_caused(fleet) -> None:
    assert_edits_on_every_replica_reach_one_socket(fleet, "shared note")


def test_app_2_rejects_app_1s_token(fleet) -> None:
    chat_token = fleet.admin("chat").token
    assert Api(fleet.url("notes"), chat_token).get("/api/v1/auths/").status_code == 401
    for url in fleet.replicas("notes").values():
        assert Api(url, chat_token).get("/api/v1/auths/").status_code == 401


def test_app_1s_database_role_cannot_connect_to_app_2s_database(fleet) -> None:
    """From a chat replica's node, with the chat replica's own DATABASE_URL, pointed at notes' database."""
    own = fleet.env("chat-node-b-1")["DATABASE_URL"]
    other = urlunsplit(urlsplit(own)._replace(path="/openwebui_notes"))

    def connect(url: str) -> subprocess.CompletedProcess[str]:
        return fleet.exec("chat-node-b-1", ["psql", "-X", "-At", "-c", "select current_user", url])
    assert connect(own).returncode == 0
    denied = connect(other)
    assert denied.returncode != 0
    assert "permission denied for database" in denied.stderr


def test_app_1s_redis_user_cannot_touch_app_2s_keys(fleet) -> None:
    """The ACL users the program loads into the one Redis: each replica's REDIS_URL user reaches its own
    app's keys only (from the replica's node, as the replica connects)."""
    def redis_cli(replica: str, *args: str) -> str:
        url = urlsplit(fleet.env(replica)["REDIS_URL"])
        record = fleet.runner.runtime["containers"][replica]
        done = subprocess.run(netns.in_ns(record["namespace"], [
            "redis-cli", "-h", url.hostname, "-p", str(url.port), "--user", url.username, "--no-auth-warning",
            *args]), env={"PATH": os.environ["PATH"], "REDISCLI_AUTH": url.password}, capture_output=True,
            text=True, timeout=30)
        return done.stdout.strip() + done.stderr.strip()
    key = f"open-webui-notes:realfleet-probe-{uuid.uuid4().hex[:8]}"
    assert redis_cli("notes-node-b-1", "SET", key, "notes only") == "OK"
    try:
        assert redis_cli("notes-node-b-1", "GET", key) == "notes only"
        assert "NOPERM" in redis_cli("chat-node-a-1", "GET", key)
        assert "NOPERM" in redis_cli("chat-node-a-1", "DEL", key)
        assert "NOPERM" in redis_cli("chat-node-a-1", "KEYS", "*")
        assert redis_cli("chat-node-a-1", "SET", key.replace("-notes:", "-chat:"), "x", "EX", "5") == "OK"
    finally:
        redis_cli("notes-node-b-1", "DEL", key)


def test_no_websocket_event_of_app_1_reaches_a_client_of_app_2(fleet) -> None:
    chat, notes = fleet.admin("chat"), fleet.admin("notes")
    chat_note, notes_note = _note(chat, "chat note"), _note(notes, "notes note")
    chat_client, chat_events = socket_client(fleet.url("chat"), chat.token)
    notes_client, notes_events = socket_client(fleet.url("notes"), notes.token)
    try:
        chat_client.call("join-note", {"note_id": chat_note, "auth": {"token": chat.token}}, timeout=EVENT_TIMEOUT_S)
        notes_client.call("join-note", {"note_id": notes_note, "auth": {"token": notes.token}},
                          timeout=EVENT_TIMEOUT_S)
        for replica, url in fleet.replicas("chat").items():
            _update(chat.as_user(url), chat_note, f"chat {replica}")
        # Then one event of app 2's own, after app 1's: once it arrives, app 1's would have too.
        _update(notes, notes_note, "notes own")
        assert notes_events.wait_for(lambda e, d: e == "events:note" and d["title"] == "notes own", EVENT_TIMEOUT_S)
        assert chat_events.wait_for(lambda e, d: e == "events:note" and d["title"].startswith("chat "),
                                    EVENT_TIMEOUT_S)
        leaked = [(e, d) for e, d in notes_events.seen if e != "__connect__" and (d or {}).get("id") != notes_note]
        assert leaked == []
    finally:
        chat_client.disconnect()
        notes_client.disconnect()
