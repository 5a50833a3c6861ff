"""BACKUP_REPORT_COLUMNS: what a restore grants each app's analytics role; a bad value is one message."""
from __future__ import annotations

import pytest

from backup_env import env, job, ok, pg, qdrant, s3, s3_endpoint  # noqa: F401
from fleet_backup.errors import CONFIG, JobError
from fleet_backup.settings import Settings

BASE = {"BACKUP_STACK": "prod", "BACKUP_APPS": "chat", "BACKUP_S3_BUCKET": "b"}


def test_the_columns_are_read_table_by_table() -> None:
    settings = Settings.from_env({**BASE, "BACKUP_REPORT_COLUMNS": '{"chat":["created_at"],"user":["id","name"]}'})
    assert settings.report_columns == {"chat": ("created_at",), "user": ("id", "name")}


@pytest.mark.parametrize("value", ['["chat"]', '{"chat": []}', '{"chat": ["a; DROP"]}', "{not json", '{"Chat": ["x"]}'])
def test_a_bad_value_is_one_configuration_error_naming_the_variable(value: str) -> None:
    with pytest.raises(JobError) as e:
        Settings.from_env({**BASE, "BACKUP_REPORT_COLUMNS": value})
    assert e.value.code == CONFIG and "BACKUP_REPORT_COLUMNS must be JSON" in str(e.value)
    assert value not in str(e.value)


def test_a_restore_without_the_columns_is_refused_naming_the_variable(env):  # noqa: F811
    ok(env, "backup")
    without = {k: v for k, v in env.items() if k != "BACKUP_REPORT_COLUMNS"}
    result = job(without, "restore", "--app", "chat", "--skip-qdrant")
    assert result.returncode == CONFIG and "BACKUP_REPORT_COLUMNS is not set" in result.stderr
