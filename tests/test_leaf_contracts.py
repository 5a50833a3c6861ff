"""The two job images each carry one leaf package; both must name an app's database alike."""
import pytest

from fleet_analytics.settings import App as AnalyticsApp
from fleet_backup.settings import App as BackupApp


@pytest.mark.parametrize("app, database", [("chat", "openwebui_chat"), ("docs-team", "openwebui_docs_team")])
def test_backup_and_analytics_jobs_name_an_apps_database_alike(app: str, database: str) -> None:
    assert BackupApp(app).database == AnalyticsApp(app).database == database
    assert AnalyticsApp(app).role == database + "_analytics"


def test_a_restore_grants_the_role_the_report_logs_in_as() -> None:
    assert BackupApp("docs-team").analytics_role == AnalyticsApp("docs-team").role == "openwebui_docs_team_analytics"
