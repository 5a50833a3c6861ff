"""The scheduled job's run: reports to the bucket under reports/<stack>/<date>/ and latest/, and its health."""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from conftest import REPO, Fleet

from realservices import moto_s3_server

pytestmark = pytest.mark.openwebui


@pytest.fixture(scope="module")
def s3() -> Iterator[str]:
    with moto_s3_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                     aws_secret_access_key="s").create_bucket(Bucket="fleet-backups")
        yield endpoint


def job(fleet: Fleet, s3: str, state: Path, command: str, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {**fleet.env(), "ANALYTICS_STACK": "prod", "ANALYTICS_S3_BUCKET": "fleet-backups",
           "ANALYTICS_S3_ENDPOINT": s3, "ANALYTICS_SINCE_DAYS": "90", "ANALYTICS_STATE_DIR": str(state),
           "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s", **overrides}
    return subprocess.run([sys.executable, "-m", "fleet_analytics", command], cwd=REPO, env=env,
                          capture_output=True, text=True)


def test_a_run_writes_html_json_csv_under_its_date_and_latest(fleet: Fleet, s3: str, tmp_path: Path) -> None:
    assert job(fleet, s3, tmp_path, "health").returncode == 0  # no run yet
    result = job(fleet, s3, tmp_path, "publish")
    assert result.returncode == 0, result.stderr
    client = boto3.client("s3", endpoint_url=s3, region_name="us-east-1", aws_access_key_id="k",
                          aws_secret_access_key="s")
    keys = {o["Key"] for o in client.list_objects_v2(Bucket="fleet-backups", Prefix="reports/")["Contents"]}
    today = datetime.now(UTC).date().isoformat()
    assert keys == {f"reports/prod/{d}/report.{ext}" for d in (today, "latest") for ext in ("html", "json", "csv")}
    latest = json.loads(client.get_object(Bucket="fleet-backups", Key="reports/prod/latest/report.json")["Body"].read())
    dated = json.loads(client.get_object(Bucket="fleet-backups", Key=f"reports/prod/{today}/report.json")["Body"].read())
    assert latest == dated and latest["period"]["days"] == 90
    assert latest["all"]["messages"]["user"] == sum(m[3] == "user" for ds in fleet.data.values() for m in ds.messages)
    html = client.get_object(Bucket="fleet-backups", Key="reports/prod/latest/report.html")
    assert html["ContentType"].startswith("text/html")
    assert job(fleet, s3, tmp_path, "health").returncode == 0


def test_health_fails_after_a_failed_run_and_recovers_after_a_good_one(fleet: Fleet, s3: str, tmp_path: Path) -> None:
    bad = job(fleet, s3, tmp_path, "publish", ANALYTICS_PASSWORD_CHAT="wrong")
    assert bad.returncode == 3 and "password authentication failed" in bad.stderr and "wrong" not in bad.stderr
    unhealthy = job(fleet, s3, tmp_path, "health")
    assert unhealthy.returncode == 1 and "last run failed" in unhealthy.stdout and "exit 3" in unhealthy.stdout
    no_bucket = job(fleet, s3, tmp_path, "publish", ANALYTICS_S3_BUCKET="no-such-bucket")
    assert no_bucket.returncode == 5 and "NoSuchBucket" in no_bucket.stderr
    assert job(fleet, s3, tmp_path, "health").returncode == 1
    assert job(fleet, s3, tmp_path, "publish").returncode == 0
    assert job(fleet, s3, tmp_path, "health").returncode == 0
