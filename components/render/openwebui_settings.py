"""Open WebUI variables for an app's scaling, logging, sign-in and settings mode.

Every name is read by Open WebUI 0.12.4 (open_webui/env.py, config.py; the README lists the lines).
Three layers, later wins: `hardening_env` (the app's `env` may override it), then the app's `env`,
then `settings_env` (the program manages it; `env` may not set these names).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the config package imports this package: no import cycle
    from components.config.app_settings import AppSettings, OAuth

# Variables of Open WebUI's persistent config: with ENABLE_PERSISTENT_CONFIG=true, their value is
# saved in the database at first start and read from there ever after (open_webui/models/config.py).
# name → config key, from scripts/openwebui_persistent_env.py.
PERSISTENT_ENV: dict[str, str] = {
    line.split()[0]: line.split()[1]
    for line in Path(__file__).with_name("openwebui_persistent_env_names.txt").read_text().splitlines()
    if line and not line.startswith("#")}


def saved_in_database(name: str, env: dict[str, str]) -> bool:
    """Whether Open WebUI running with `env` keeps `name`'s value in its database once saved, so a
    changed value in the environment is ignored (open_webui/models/config.py: persistent_enabled_for)."""
    key = PERSISTENT_ENV.get(name)
    if key is None or env.get("ENABLE_PERSISTENT_CONFIG", "true").lower() != "true":
        return False
    return not key.startswith("oauth.") or env.get("ENABLE_OAUTH_PERSISTENT_CONFIG", "false").lower() == "true"


def hardening_env() -> dict[str, str]:
    """Defaults Open WebUI's docs advise for many replicas; the app's `env` may override them."""
    return {
        # A tool's `requirements:` would be pip-installed into the one replica that loaded it (and
        # lost when it is replaced): replicas would differ. Bake packages into the image instead.
        "ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS": "false",
        # Open WebUI closes sign-up after the first admin by saving `ui.enable_signup` false; with
        # ENABLE_PERSISTENT_CONFIG=false that reaches one replica's memory only. The first admin may sign
        # up anyway (open_webui/routers/auths.py: signup); set it "true" in `env` to open sign-up.
        "ENABLE_SIGNUP": "false",
    }


def settings_env(settings: AppSettings, public_url: str) -> dict[str, str]:
    """Variables the program manages from the app's settings (plain values; secrets are separate)."""
    pool = settings.database_pool
    env = {
        "DATABASE_POOL_SIZE": str(pool.size),
        "DATABASE_POOL_MAX_OVERFLOW": str(pool.max_overflow),
        "DATABASE_POOL_TIMEOUT": str(pool.timeout_s),
        "DATABASE_POOL_RECYCLE": str(pool.recycle_s),
        "THREAD_POOL_SIZE": str(settings.thread_pool_size),
        "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL": str(settings.user_active_status_update_interval_s),
        # The JSON formatter is only installed when GLOBAL_LOG_LEVEL is set (open_webui/env.py).
        "GLOBAL_LOG_LEVEL": settings.log_level,
        "LOG_FORMAT": "json" if settings.log_format == "json" else "text",
        # stack: every start and every replica reads the environment, never the database.
        "ENABLE_PERSISTENT_CONFIG": "false" if settings.settings_from == "stack" else "true",
        # Sign-in settings always come from the stack (providers are registered from env anyway).
        "ENABLE_OAUTH_PERSISTENT_CONFIG": "false",
    }
    if settings.oauth is not None:
        env.update(oauth_env(settings.oauth, public_url))
    return env


def oauth_env(oauth: OAuth, public_url: str) -> dict[str, str]:
    """Providers, signup, account merging and claims. Client secrets: `oauth_secret_names`."""
    def callback(provider: str) -> str:
        # Fixed, so the IdP's registered redirect URI matches whichever replica starts the login.
        return f"{public_url}/oauth/{provider}/login/callback"

    claims = oauth.claims
    env = {
        "ENABLE_OAUTH_SIGNUP": _bool(oauth.signup),
        "OAUTH_MERGE_ACCOUNTS_BY_EMAIL": _bool(oauth.merge_accounts_by_email),
        "OAUTH_ALLOWED_DOMAINS": ",".join(oauth.allowed_domains),
        "ENABLE_LOGIN_FORM": _bool(oauth.login_form),
        "OAUTH_EMAIL_CLAIM": claims.email,
        "OAUTH_USERNAME_CLAIM": claims.username,
        "OAUTH_PICTURE_CLAIM": claims.picture,
        "OAUTH_GROUPS_CLAIM": claims.groups,
        "OAUTH_ROLES_CLAIM": claims.roles,
        "ENABLE_OAUTH_ROLE_MANAGEMENT": _bool(oauth.role_management is not None),
        "ENABLE_OAUTH_GROUP_MANAGEMENT": _bool(oauth.group_management is not None),
    }
    if claims.sub is not None:
        env["OAUTH_SUB_CLAIM"] = claims.sub
    if oauth.role_management is not None:
        env["OAUTH_ROLES_SEPARATOR"] = ","
        env["OAUTH_ALLOWED_ROLES"] = ",".join(oauth.role_management.allowed_roles)
        env["OAUTH_ADMIN_ROLES"] = ",".join(oauth.role_management.admin_roles)
    if oauth.group_management is not None:
        env["ENABLE_OAUTH_GROUP_CREATION"] = _bool(oauth.group_management.create_groups)
    if oauth.google is not None:
        env |= {"GOOGLE_CLIENT_ID": oauth.google.client_id, "GOOGLE_OAUTH_SCOPE": oauth.google.scope,
                "GOOGLE_REDIRECT_URI": callback("google")}
    if oauth.github is not None:
        env |= {"GITHUB_CLIENT_ID": oauth.github.client_id, "GITHUB_CLIENT_SCOPE": oauth.github.scope,
                "GITHUB_CLIENT_REDIRECT_URI": callback("github")}
    if oauth.microsoft is not None:
        env |= {"MICROSOFT_CLIENT_ID": oauth.microsoft.client_id,
                "MICROSOFT_CLIENT_TENANT_ID": oauth.microsoft.tenant_id,
                "MICROSOFT_OAUTH_SCOPE": oauth.microsoft.scope, "MICROSOFT_REDIRECT_URI": callback("microsoft")}
    if oauth.oidc is not None:
        oidc = oauth.oidc
        env |= {"OAUTH_CLIENT_ID": oidc.client_id, "OPENID_PROVIDER_URL": oidc.provider_url,
                "OAUTH_PROVIDER_NAME": oidc.provider_name, "OAUTH_SCOPES": oidc.scopes,
                "OPENID_REDIRECT_URI": callback("oidc")}
        if oidc.code_challenge is not None:
            env["OAUTH_CODE_CHALLENGE_METHOD"] = oidc.code_challenge
    return env


# Provider → the secret variable its client secret goes in (appSecrets.<app>.<key>).
OAUTH_SECRETS: dict[str, tuple[str, str]] = {
    "google": ("googleClientSecret", "GOOGLE_CLIENT_SECRET"),
    "github": ("githubClientSecret", "GITHUB_CLIENT_SECRET"),
    "microsoft": ("microsoftClientSecret", "MICROSOFT_CLIENT_SECRET"),
    "oidc": ("oidcClientSecret", "OAUTH_CLIENT_SECRET"),
}


def _bool(value: bool) -> str:
    return "true" if value else "false"


# Names `settings_env` and `oauth_env` may set, and the OAuth secrets: the app's env may not set them.
MANAGED_SETTINGS_ENV = frozenset({
    "DATABASE_POOL_SIZE", "DATABASE_POOL_MAX_OVERFLOW", "DATABASE_POOL_TIMEOUT", "DATABASE_POOL_RECYCLE",
    "THREAD_POOL_SIZE", "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL", "GLOBAL_LOG_LEVEL", "LOG_FORMAT",
    "ENABLE_PERSISTENT_CONFIG", "ENABLE_OAUTH_PERSISTENT_CONFIG", "ENABLE_OAUTH_SIGNUP",
    "OAUTH_MERGE_ACCOUNTS_BY_EMAIL", "OAUTH_ALLOWED_DOMAINS", "ENABLE_LOGIN_FORM", "OAUTH_EMAIL_CLAIM",
    "OAUTH_USERNAME_CLAIM", "OAUTH_PICTURE_CLAIM", "OAUTH_GROUPS_CLAIM", "OAUTH_ROLES_CLAIM", "OAUTH_SUB_CLAIM",
    "ENABLE_OAUTH_ROLE_MANAGEMENT", "ENABLE_OAUTH_GROUP_MANAGEMENT", "ENABLE_OAUTH_GROUP_CREATION",
    "OAUTH_ROLES_SEPARATOR", "OAUTH_ALLOWED_ROLES", "OAUTH_ADMIN_ROLES",
    "GOOGLE_CLIENT_ID", "GOOGLE_OAUTH_SCOPE", "GOOGLE_REDIRECT_URI", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SCOPE",
    "GITHUB_CLIENT_REDIRECT_URI", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_TENANT_ID", "MICROSOFT_OAUTH_SCOPE",
    "MICROSOFT_REDIRECT_URI", "OAUTH_CLIENT_ID", "OPENID_PROVIDER_URL", "OAUTH_PROVIDER_NAME", "OAUTH_SCOPES",
    "OPENID_REDIRECT_URI", "OAUTH_CODE_CHALLENGE_METHOD",
    *(name for _, name in OAUTH_SECRETS.values()),
})
