"""Open WebUI's environment for one replica, and the names the program sets, derived from the renderer."""
from __future__ import annotations

from components.config.apps import AppSpec
from components.endpoints import Endpoint, SharedEndpoints
from components.render.openwebui_env import (OPENWEBUI_ENV_NAMES, OpenWebUISecrets, managed_env_names,
                                              openwebui_env, openwebui_secret_env)

# Written out by hand: every variable the program sets for some app (plain and secret).
MANAGED = {
    "WEBUI_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "REDIS_KEY_PREFIX", "ENABLE_WEBSOCKET_SUPPORT",
    "WEBSOCKET_MANAGER", "WEBSOCKET_REDIS_URL", "VECTOR_DB", "QDRANT_URI", "QDRANT_API_KEY",
    "QDRANT_COLLECTION_PREFIX", "STORAGE_PROVIDER", "S3_ENDPOINT_URL", "S3_BUCKET_NAME",
    "S3_KEY_PREFIX", "S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_REGION_NAME",
    "S3_ADDRESSING_STYLE", "WEBUI_URL", "CORS_ALLOW_ORIGIN", "UVICORN_WORKERS",
    "ENABLE_DB_MIGRATIONS", "OLLAMA_BASE_URLS", "ENABLE_OLLAMA_API", "OPENAI_API_BASE_URLS",
    "OPENAI_API_KEYS", "ENABLE_OPENAI_API", "MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET",
    "MICROSOFT_CLIENT_TENANT_ID",
    # scaling, logging and the settings mode
    "DATABASE_POOL_SIZE", "DATABASE_POOL_MAX_OVERFLOW", "DATABASE_POOL_TIMEOUT", "DATABASE_POOL_RECYCLE",
    "THREAD_POOL_SIZE", "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL", "GLOBAL_LOG_LEVEL", "LOG_FORMAT",
    "ENABLE_PERSISTENT_CONFIG", "ENABLE_OAUTH_PERSISTENT_CONFIG",
    # sign-in
    "ENABLE_OAUTH_SIGNUP", "OAUTH_MERGE_ACCOUNTS_BY_EMAIL", "OAUTH_ALLOWED_DOMAINS", "ENABLE_LOGIN_FORM",
    "OAUTH_EMAIL_CLAIM", "OAUTH_USERNAME_CLAIM", "OAUTH_PICTURE_CLAIM", "OAUTH_GROUPS_CLAIM", "OAUTH_ROLES_CLAIM",
    "OAUTH_SUB_CLAIM", "ENABLE_OAUTH_ROLE_MANAGEMENT", "ENABLE_OAUTH_GROUP_MANAGEMENT", "ENABLE_OAUTH_GROUP_CREATION",
    "OAUTH_ROLES_SEPARATOR", "OAUTH_ALLOWED_ROLES", "OAUTH_ADMIN_ROLES", "GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET",
    "GOOGLE_OAUTH_SCOPE", "GOOGLE_REDIRECT_URI", "GITHUB_CLIENT_ID", "GITHUB_CLIENT_SECRET", "GITHUB_CLIENT_SCOPE",
    "GITHUB_CLIENT_REDIRECT_URI", "MICROSOFT_OAUTH_SCOPE", "MICROSOFT_REDIRECT_URI", "OAUTH_CLIENT_ID",
    "OAUTH_CLIENT_SECRET", "OPENID_PROVIDER_URL", "OAUTH_PROVIDER_NAME", "OAUTH_SCOPES", "OPENID_REDIRECT_URI",
    "OAUTH_CODE_CHALLENGE_METHOD",
}

# The shared services as a prod replica off the shared node reaches them (Pulumi.prod.yaml's shared node).
FROM_ANOTHER_NODE = SharedEndpoints(
    postgres=Endpoint("10.0.5.24", 5432), postgres_admin_user="postgres", redis=Endpoint("10.0.5.24", 6379),
    qdrant=Endpoint("10.0.5.24", 6333), object_storage_url="http://10.0.5.24:9000", bucket="openwebui-files",
    region="us-east-1", ollama=Endpoint("10.0.5.24", 11434))
CHAT = AppSpec.model_validate({"hostname": "chat.example.com", "replicas": {"master": 1, "slave1": 2}})


def test_managed_names_are_every_variable_the_renderer_can_set() -> None:
    assert managed_env_names() == MANAGED


def test_every_managed_name_is_one_open_webui_reads() -> None:
    assert MANAGED - OPENWEBUI_ENV_NAMES == set()


def test_a_replica_shares_websockets_vectors_and_files_with_its_app_and_does_not_migrate() -> None:
    assert openwebui_env("chat", CHAT, FROM_ANOTHER_NODE, "https://chat.example.com", migrates=False) == {
        "ENABLE_WEBSOCKET_SUPPORT": "true", "WEBSOCKET_MANAGER": "redis", "REDIS_KEY_PREFIX": "open-webui-chat",
        "VECTOR_DB": "qdrant", "QDRANT_URI": "http://10.0.5.24:6333", "QDRANT_COLLECTION_PREFIX": "chat",
        "STORAGE_PROVIDER": "s3", "S3_ENDPOINT_URL": "http://10.0.5.24:9000", "S3_BUCKET_NAME": "openwebui-files",
        "S3_KEY_PREFIX": "apps/chat", "S3_REGION_NAME": "us-east-1", "S3_ADDRESSING_STYLE": "path",
        "WEBUI_URL": "https://chat.example.com", "CORS_ALLOW_ORIGIN": "https://chat.example.com",
        "UVICORN_WORKERS": "1", "ENABLE_DB_MIGRATIONS": "false",
        "ENABLE_OLLAMA_API": "false", "ENABLE_OPENAI_API": "false",
        # the app's scaling settings at their defaults, JSON logs, the stack as the source of settings
        "DATABASE_POOL_SIZE": "10", "DATABASE_POOL_MAX_OVERFLOW": "10", "DATABASE_POOL_TIMEOUT": "30",
        "DATABASE_POOL_RECYCLE": "3600", "THREAD_POOL_SIZE": "2000",
        "DATABASE_USER_ACTIVE_STATUS_UPDATE_INTERVAL": "120", "GLOBAL_LOG_LEVEL": "INFO", "LOG_FORMAT": "json",
        "ENABLE_PERSISTENT_CONFIG": "false", "ENABLE_OAUTH_PERSISTENT_CONFIG": "false",
        "ENABLE_PIP_INSTALL_FRONTMATTER_REQUIREMENTS": "false", "ENABLE_SIGNUP": "false",
    }


def test_the_migrating_replica_differs_only_in_that_it_migrates() -> None:
    others = openwebui_env("chat", CHAT, FROM_ANOTHER_NODE, "https://chat.example.com", migrates=False)
    migrator = openwebui_env("chat", CHAT, FROM_ANOTHER_NODE, "https://chat.example.com", migrates=True)
    assert {k: v for k, v in migrator.items() if others[k] != v} == {"ENABLE_DB_MIGRATIONS": "true"}


def test_shared_ollama_comes_first_and_app_env_is_added_last() -> None:
    app = CHAT.model_copy(update={"use_shared_ollama": True, "ollama_urls": ["http://10.0.5.30:11434"],
                                  "env": {"ENABLE_SIGNUP": "false"}})
    env = openwebui_env("chat", app, FROM_ANOTHER_NODE, "https://chat.example.com", migrates=False)
    assert env["OLLAMA_BASE_URLS"] == "http://10.0.5.24:11434;http://10.0.5.30:11434"
    assert env["ENABLE_OLLAMA_API"] == "true" and env["ENABLE_SIGNUP"] == "false"


def test_secret_env_gives_websockets_the_same_redis_as_the_app() -> None:
    secrets = OpenWebUISecrets(secret_key="k", database_url="postgresql://u:p@h:5432/d", redis_url="redis://:p@h:6379/0",
                               qdrant_api_key="q", s3_access_key="a", s3_secret_key="s")
    assert openwebui_secret_env(secrets) == {
        "WEBUI_SECRET_KEY": "k", "DATABASE_URL": "postgresql://u:p@h:5432/d", "REDIS_URL": "redis://:p@h:6379/0",
        "WEBSOCKET_REDIS_URL": "redis://:p@h:6379/0", "QDRANT_API_KEY": "q", "S3_ACCESS_KEY_ID": "a",
        "S3_SECRET_ACCESS_KEY": "s"}
