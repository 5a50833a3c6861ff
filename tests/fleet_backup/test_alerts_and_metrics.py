"""Webhook alerts (to a local HTTP receiver) and Prometheus metrics (scraped) of the backup job."""
from __future__ import annotations

import json
from datetime import datetime
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from backup_env import REPO, env, job, ok, pg, qdrant, run_ids, s3, s3_endpoint  # noqa: F401
from realservices import free_port, running


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A webhook receiver on loopback: every JSON body it gets, in order."""
    got: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hooks/T0-token-in-the-path", got
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_gets_a_failure_the_first_success_after_it_and_a_failed_drill_and_no_secret(env, receiver, s3):
    url, got = receiver
    env = {**env, "BACKUP_WEBHOOK_URL": url}
    bad = {**env, "APP_DB_PASSWORD_CHAT": "not-the-password"}
    outputs = [job(bad, "backup"), job(env, "backup"), job(env, "backup")]
    assert [r.returncode for r in outputs] == [4, 0, 0]
    (run_before_damage, *_) = run_ids(env)
    key = f"backups/prod/{run_before_damage}/postgres/chat.dump"
    s3.put_object(Bucket=env["BACKUP_S3_BUCKET"], Key=key, Body=b"damaged")
    outputs.append(job(env, "verify"))
    assert outputs[-1].returncode == 8

    assert [m["event"] for m in got] == ["backup_failed", "backup_recovered", "verify_failed"]
    failed, recovered, drill = got
    assert failed["text"].startswith("[fleet-backup prod] backup FAILED (exit 4): pg_dump of openwebui_chat failed")
    assert failed["exitCode"] == 4 and failed["stack"] == "prod"
    assert recovered["runId"] in run_ids(env) and recovered["exitCode"] == 0
    assert drill["exitCode"] == 8 and key in drill["reason"]
    secrets = [v for k, v in bad.items() if "PASSWORD" in k or "KEY" in k or "SECRET" in k] + [url]
    text = json.dumps(got) + "".join(r.stderr for r in outputs)
    assert not [s for s in secrets if s in text]


def test_an_unreachable_webhook_is_logged_without_its_url_and_does_not_change_the_exit_code(env):
    url = f"http://127.0.0.1:{free_port()}/hooks/secret-token-path"
    result = job({**env, "BACKUP_WEBHOOK_URL": url, "APP_DB_PASSWORD_CHAT": "wrong"}, "backup")
    assert result.returncode == 4
    assert "alert backup_failed: the webhook could not be reached" in result.stderr
    assert "secret-token-path" not in result.stderr


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_schedule_process_serves_the_last_runs_as_prometheus_metrics(env, s3):
    ok(env, "backup")
    ok(env, "verify")
    status = json.loads(ok(env, "status", "--json").stdout)
    port = free_port()
    schedule = [sys.executable, "-m", "fleet_backup", "schedule", "--cron", "0 2 1 1 *"]
    with running(schedule, port, env={**env, "BACKUP_METRICS_PORT": str(port),
                                      "BACKUP_METRICS_ADDRESS": "127.0.0.1", "PYTHONPATH": str(REPO)}):
        metrics = scrape(port)
    success = status["lastSuccess"]
    assert metrics[("fleet_backup_last_run_success", ())] == 1
    assert metrics[("fleet_backup_last_verify_success", ())] == 1
    assert metrics[("fleet_backup_last_success_objects", ())] == success["objects"]
    assert metrics[("fleet_backup_last_success_duration_seconds", ())] == success["durationSeconds"]
    for app, size in success["bytesPerApp"].items():
        assert metrics[("fleet_backup_last_success_bytes", (("app", app),))] == size
    assert metrics[("fleet_backup_last_success_timestamp_seconds", ())] == \
        datetime.fromisoformat(success["finishedAt"]).timestamp()
