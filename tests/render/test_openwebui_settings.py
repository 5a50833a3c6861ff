"""Open WebUI variables for scaling, logging, sign-in and the settings mode."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from components.config.app_settings import AppSettings
from components.render.openwebui_settings import (MANAGED_SETTINGS_ENV, PERSISTENT_ENV, hardening_env,
                                                  saved_in_database, settings_env)

ENV_NAMES = Path(__file__).parents[2] / "components" / "render" / "openwebui_env_names.txt"
OPENWEBUI_SOURCE = Path(os.environ.get("OPENWEBUI_SOURCE",
                                       "/work/owui-venv/lib/python3.11/site-packages/open_webui"))
OIDC = {"clientId": "fleet", "providerUrl": "https://sso.example.com/realms/acme/.well-known/openid-configuration"}


def test_defaults_are_the_scaling_settings_open_webuis_docs_ask_for() -> None:
    env = settings_env(AppSettings(), "https://chat.example.com")
    assert env == {
        "DATABASE_POOL_SIZE": "10", "DATABASE_POOL_MAX_OVERFLOW": "10", "DATABASE_POOL_TIMEOUT": "30",
        "DATABASE_POOL_RECYCLE": "3600", "THREAD_POOL_SIZE": "2000",
        "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL": "120", "GLOBAL_LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
        "ENABLE_PERSISTENT_CONFIG": "false", "ENABLE_OAUTH_PERSISTENT_CONFIG": "false"}
    assert hardening_env() == {"ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS": "false", "ENABLE_SIGNUP": "false"}


def test_admin_ui_mode_keeps_open_webuis_persistent_config() -> None:
    env = settings_env(AppSettings.model_validate({"settingsFrom": "adminUi"}), "https://c.example.com")
    assert env["ENABLE_PERSISTENT_CONFIG"] == "true"
    assert env["ENABLE_OAUTH_PERSISTENT_CONFIG"] == "false"


def test_overrides_reach_the_variables() -> None:
    settings = AppSettings.model_validate({"databasePool": {"size": 5, "maxOverflow": 0, "timeoutS": 10,
                                                             "recycleS": 600},
                                           "threadPoolSize": 500, "userActiveStatusUpdateIntervalS": 60,
                                           "logFormat": "text", "logLevel": "DEBUG"})
    env = settings_env(settings, "https://c.example.com")
    assert {k: env[k] for k in ("DATABASE_POOL_SIZE", "DATABASE_POOL_MAX_OVERFLOW", "DATABASE_POOL_TIMEOUT",
                                "DATABASE_POOL_RECYCLE", "THREAD_POOL_SIZE", "GLOBAL_LOG_LEVEL", "LOG_FORMAT",
                                "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL")} == {
        "DATABASE_POOL_SIZE": "5", "DATABASE_POOL_MAX_OVERFLOW": "0", "DATABASE_POOL_TIMEOUT": "10",
        "DATABASE_POOL_RECYCLE": "600", "THREAD_POOL_SIZE": "500", "GLOBAL_LOG_LEVEL": "DEBUG",
        "LOG_FORMAT": "text", "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL": "60"}
    assert settings.database_pool.connections_per_replica == 10  # two engines × (5 + 0)


def test_oidc_with_claims_roles_and_groups() -> None:
    settings = AppSettings.model_validate({"oauth": {
        "oidc": {**OIDC, "providerName": "Acme SSO", "scopes": "openid email profile groups"},
        "signup": True, "mergeAccountsByEmail": True, "allowedDomains": ["acme.com"],
        "claims": {"email": "email", "username": "preferred_username", "groups": "groups", "roles": "realm_roles"},
        "roleManagement": {"allowedRoles": ["staff", "admin"], "adminRoles": ["admin"]},
        "groupManagement": {"createGroups": True}}})
    env = settings_env(settings, "https://chat.example.com")
    expected = {
        "OAUTH_CLIENT_ID": "fleet",
        "OPENID_PROVIDER_URL": "https://sso.example.com/realms/acme/.well-known/openid-configuration",
        "OAUTH_PROVIDER_NAME": "Acme SSO", "OAUTH_SCOPES": "openid email profile groups",
        "OPENID_REDIRECT_URI": "https://chat.example.com/oauth/oidc/login/callback",
        "ENABLE_OAUTH_SIGNUP": "true", "OAUTH_MERGE_ACCOUNTS_BY_EMAIL": "true", "OAUTH_ALLOWED_DOMAINS": "acme.com",
        "ENABLE_LOGIN_FORM": "true", "OAUTH_EMAIL_CLAIM": "email", "OAUTH_USERNAME_CLAIM": "preferred_username",
        "OAUTH_PICTURE_CLAIM": "picture", "OAUTH_GROUPS_CLAIM": "groups", "OAUTH_ROLES_CLAIM": "realm_roles",
        "ENABLE_OAUTH_ROLE_MANAGEMENT": "true", "OAUTH_ROLES_SEPARATOR": ",", "OAUTH_ALLOWED_ROLES": "staff,admin",
        "OAUTH_ADMIN_ROLES": "admin", "ENABLE_OAUTH_GROUP_MANAGEMENT": "true", "ENABLE_OAUTH_GROUP_CREATION": "true"}
    assert {k: env.get(k) for k in expected} == expected
    assert not any("SECRET" in k for k in env)  # client secrets travel only as secrets


def test_google_github_and_microsoft_get_their_ids_scopes_and_fixed_callbacks() -> None:
    settings = AppSettings.model_validate({"oauth": {
        "google": {"clientId": "g-id"}, "github": {"clientId": "gh-id"},
        "microsoft": {"clientId": "ms-id", "tenantId": "t-1"}}})
    env = settings_env(settings, "https://c.example.com")
    assert {k: env[k] for k in env if k.startswith(("GOOGLE_", "GITHUB_", "MICROSOFT_"))} == {
        "GOOGLE_CLIENT_ID": "g-id", "GOOGLE_OAUTH_SCOPE": "openid email profile",
        "GOOGLE_REDIRECT_URI": "https://c.example.com/oauth/google/login/callback",
        "GITHUB_CLIENT_ID": "gh-id", "GITHUB_CLIENT_SCOPE": "user:email",
        "GITHUB_CLIENT_REDIRECT_URI": "https://c.example.com/oauth/github/login/callback",
        "MICROSOFT_CLIENT_ID": "ms-id", "MICROSOFT_CLIENT_TENANT_ID": "t-1",
        "MICROSOFT_OAUTH_SCOPE": "openid email profile",
        "MICROSOFT_REDIRECT_URI": "https://c.example.com/oauth/microsoft/login/callback"}
    assert env["ENABLE_OAUTH_SIGNUP"] == "false" and env["OAUTH_MERGE_ACCOUNTS_BY_EMAIL"] == "false"


@pytest.mark.parametrize(("oauth", "message"), [
    ({}, "names no provider"),
    ({"oidc": {**OIDC, "providerUrl": "https://sso.example.com/realms/acme"}}, "is not a discovery URL"),
    ({"oidc": {**OIDC, "codeChallenge": "plain"}}, "Input should be 'S256'"),
])
def test_bad_oauth_config_is_refused(oauth: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AppSettings.model_validate({"oauth": oauth})


def test_every_name_the_program_sets_is_one_open_webui_reads() -> None:
    names = {line for line in ENV_NAMES.read_text().splitlines() if line and not line.startswith("#")}
    assert sorted((MANAGED_SETTINGS_ENV | set(hardening_env())) - names) == []
    assert sorted(set(PERSISTENT_ENV) - names) == []


def test_persistent_names_are_the_ones_open_webui_saves_in_its_database() -> None:
    assert PERSISTENT_ENV["OLLAMA_BASE_URLS"] == "ollama.base_urls"
    assert PERSISTENT_ENV["ENABLE_SIGNUP"] == "ui.enable_signup"
    assert PERSISTENT_ENV["WEBUI_URL"] == "webui.url"
    admin_ui = {"ENABLE_PERSISTENT_CONFIG": "true"}
    assert saved_in_database("ENABLE_SIGNUP", admin_ui)
    assert saved_in_database("ENABLE_SIGNUP", {})                      # Open WebUI's default: true
    assert not saved_in_database("ENABLE_SIGNUP", {"ENABLE_PERSISTENT_CONFIG": "false"})
    assert not saved_in_database("ENABLE_OAUTH_SIGNUP", admin_ui)      # oauth.*: env only by default
    assert saved_in_database("ENABLE_OAUTH_SIGNUP", {**admin_ui, "ENABLE_OAUTH_PERSISTENT_CONFIG": "True"})
    assert not saved_in_database("DATABASE_POOL_SIZE", admin_ui)       # read once at start
    assert not saved_in_database("THREAD_POOL_SIZE", admin_ui)


def test_the_persistent_list_is_what_the_installed_open_webui_source_says() -> None:
    if not (OPENWEBUI_SOURCE / "config.py").exists():
        pytest.skip(f"Open WebUI's source is not at {OPENWEBUI_SOURCE} (set OPENWEBUI_SOURCE)")
    import subprocess
    import sys
    root = Path(__file__).parents[2]
    generated = subprocess.run([sys.executable, str(root / "scripts" / "openwebui_persistent_env.py"),
                                str(OPENWEBUI_SOURCE)], capture_output=True, text=True, check=True).stdout
    assert generated == (root / "components" / "render" / "openwebui_persistent_env_names.txt").read_text()
