"""Open WebUI's environment for one replica, wired for many replicas as its docs require.

Plain values only; secrets (keys, passwords, URLs holding passwords) are added by the app
component as `Output.secret`. Every name here is read by Open WebUI's backend.
"""
from __future__ import annotations

from components.config import App
from components.endpoints import SharedEndpoints


def files_prefix(app_name: str) -> str:
    """Where an app's uploaded files live in the object storage bucket (S3_KEY_PREFIX)."""
    return f"apps/{app_name}"


def openwebui_env(app_name: str, app: App, shared: SharedEndpoints, public_url: str,
                  migrates: bool) -> dict[str, str]:
    env = {
        # Shared state across replicas: websockets through Redis, vectors in Qdrant, files in S3.
        "ENABLE_WEBSOCKET_SUPPORT": "true",
        "WEBSOCKET_MANAGER": "redis",
        "REDIS_KEY_PREFIX": f"open-webui-{app_name}",
        "VECTOR_DB": "qdrant",
        "QDRANT_URI": f"http://{shared.qdrant}",
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
    return {**env, **app.env}
