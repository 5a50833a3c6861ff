"""Open WebUI's environment for one replica, wired for many replicas as its docs require.

`openwebui_env` gives the plain values; `openwebui_secret_env` names the secret ones (keys,
passwords, URLs holding passwords), which the app component passes in as `Output.secret`. Every
name here is read by Open WebUI's backend (`OPENWEBUI_ENV_NAMES`).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

from components.endpoints import Endpoint, SharedEndpoints
from components.render.openwebui_settings import MANAGED_SETTINGS_ENV, hardening_env, settings_env

if TYPE_CHECKING:  # the config package checks apps.<app>.env against this module: no import cycle
    from components.config.apps import AppSpec

T = TypeVar("T")

# Every variable Open WebUI's backend reads (openwebui_env_names.txt, from its source).
OPENWEBUI_ENV_NAMES = frozenset(
    line for line in Path(__file__).with_name("openwebui_env_names.txt").read_text().splitlines()
    if line and not line.startswith("#"))


def files_prefix(app_name: str) -> str:
    """Where an app's uploaded files live in the object storage bucket (S3_KEY_PREFIX)."""
    return f"apps/{app_name}"


def openwebui_env(app_name: str, app: AppSpec, shared: SharedEndpoints, public_url: str,
                  migrates: bool, operator_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Later wins: hardening defaults, the operator's variables (commonEnv, then the app's env; by
    default the app's env alone), then what the program manages (the config refuses overlaps)."""
    return {**hardening_env(), **(app.env if operator_env is None else operator_env),
            **_program_env(app_name, app, shared, public_url, migrates), **settings_env(app, public_url)}


def _program_env(app_name: str, app: AppSpec, shared: SharedEndpoints, public_url: str,
                 migrates: bool) -> dict[str, str]:
    env = {
        # Shared state across replicas: websockets through Redis, vectors in Qdrant, files in S3.
        "ENABLE_WEBSOCKET_SUPPORT": "true",
        "WEBSOCKET_MANAGER": "redis",
        "REDIS_KEY_PREFIX": f"open-webui-{app_name}",
        "VECTOR_DB": "qdrant",
        "QDRANT_URI": shared.qdrant_url,
        # The backup job finds an app's collections by this prefix (fleet_backup.settings.App).
        "QDRANT_COLLECTION_PREFIX": app_name,
        "STORAGE_PROVIDER": "s3",
        "S3_ENDPOINT_URL": shared.object_storage_url,
        "S3_BUCKET_NAME": shared.bucket,
        "S3_KEY_PREFIX": files_prefix(app_name),
        "S3_REGION_NAME": shared.region,
        "S3_ADDRESSING_STYLE": "path",
        # Websockets are refused (403) unless the origin matches the public URL.
        "WEBUI_URL": public_url,
        "CORS_ALLOW_ORIGIN": public_url,
        "UVICORN_WORKERS": "1",
        # Alembic has no lock between replicas: exactly one replica per app migrates.
        "ENABLE_DB_MIGRATIONS": "true" if migrates else "false",
    }
    ollama_urls = list(app.ollama_urls)
    if app.use_shared_ollama and shared.ollama is not None:
        ollama_urls.insert(0, f"http://{shared.ollama}")
    env["ENABLE_OLLAMA_API"] = "true" if ollama_urls else "false"
    if ollama_urls:
        env["OLLAMA_BASE_URLS"] = ";".join(ollama_urls)
    env["ENABLE_OPENAI_API"] = "true" if app.openai_api_base_urls else "false"
    if app.openai_api_base_urls:
        env["OPENAI_API_BASE_URLS"] = ";".join(app.openai_api_base_urls)
    if app.microsoft_oauth is not None:
        env["MICROSOFT_CLIENT_ID"] = app.microsoft_oauth.client_id
        env["MICROSOFT_CLIENT_TENANT_ID"] = app.microsoft_oauth.tenant_id
    return env


@dataclass(frozen=True)
class OpenWebUISecrets(Generic[T]):
    """One replica's secret values (Outputs in the program, strings where only the names matter)."""
    secret_key: T
    database_url: T
    redis_url: T
    qdrant_api_key: T
    s3_access_key: T
    s3_secret_key: T
    microsoft_client_secret: T | None = None
    openai_api_keys: T | None = None  # ';'-joined
    # Further secret variables by name: sign-in client secrets, appSecrets.<app>.env.
    extra_env: Mapping[str, T] = field(default_factory=dict)


def openwebui_secret_env(secrets: OpenWebUISecrets[T]) -> dict[str, T]:
    env = {"WEBUI_SECRET_KEY": secrets.secret_key, "DATABASE_URL": secrets.database_url,
           "REDIS_URL": secrets.redis_url, "WEBSOCKET_REDIS_URL": secrets.redis_url,
           "QDRANT_API_KEY": secrets.qdrant_api_key, "S3_ACCESS_KEY_ID": secrets.s3_access_key,
           "S3_SECRET_ACCESS_KEY": secrets.s3_secret_key}
    if secrets.microsoft_client_secret is not None:
        env["MICROSOFT_CLIENT_SECRET"] = secrets.microsoft_client_secret
    if secrets.openai_api_keys is not None:
        env["OPENAI_API_KEYS"] = secrets.openai_api_keys
    return {**secrets.extra_env, **env}


@functools.cache
def managed_env_names() -> frozenset[str]:
    """Every name the program sets itself (rendered for an app using every option); `apps.<app>.env`
    may not override them."""
    from components.config.apps import AppSpec
    app = AppSpec.model_validate({
        "hostname": "a.example.com", "replicas": {"n": 1}, "useSharedOllama": True,
        "ollamaUrls": ["http://o:1"], "openaiApiBaseUrls": ["http://o:1"],
        "microsoftOAuth": {"clientId": "c", "tenantId": "t"}})
    somewhere = Endpoint("h", 1)
    shared = SharedEndpoints(postgres=somewhere, postgres_admin_user="u", redis=somewhere, qdrant=somewhere,
                             object_storage_url="http://h:1", bucket="b", region="r", ollama=somewhere)
    secrets = OpenWebUISecrets(**{f.name: "x" for f in fields(OpenWebUISecrets) if f.name != "extra_env"})
    return (frozenset(_program_env("a", app, shared, "http://a", True)) | frozenset(openwebui_secret_env(secrets))
            | MANAGED_SETTINGS_ENV)
