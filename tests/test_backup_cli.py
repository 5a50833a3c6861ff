"""fleet_backup's command line as a newcomer meets it: help that says what each command does, and a
missing S3 credential named as such (no network needed: boto3 refuses before it sends anything)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet_backup", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("command, words", [("list", "completed backups"), ("backup", "dump")])
def test_help_of_each_command_describes_it(command: str, words: str) -> None:
    result = run(command, "--help")
    assert result.returncode == 0
    _, _, rest = result.stdout.partition("\n\n")  # what follows the usage line
    assert words in rest.split("options:")[0].lower(), result.stdout


@pytest.mark.parametrize("command", ["list", "backup"])
def test_missing_s3_credentials_are_a_configuration_error_that_says_what_to_set(tmp_path: Path,
                                                                                 command: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BACKUP_STACK": "prod", "BACKUP_APPS": "chat",
           "BACKUP_S3_BUCKET": "backups", "BACKUP_S3_ENDPOINT": "http://127.0.0.1:9",
           "PGHOST": "127.0.0.1", "PGUSER": "postgres", "BACKUP_LOCK_FILE": str(tmp_path / "lock"),
           "BACKUP_WORK_DIR": str(tmp_path),
           # boto3's default chain must find nothing: no files, no instance metadata
           "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
           "AWS_EC2_METADATA_DISABLED": "true"}
    result = run(command, env=env)
    assert result.returncode == 2, result.stderr
    assert "unexpected" not in result.stderr
    assert "AWS_ACCESS_KEY_ID" in result.stderr and "AWS_SECRET_ACCESS_KEY" in result.stderr
    assert "Traceback" not in result.stderr
