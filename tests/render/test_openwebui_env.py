"""The names the program sets in Open WebUI's environment, derived from what the renderer renders."""
from __future__ import annotations

from components.render.openwebui_env import OPENWEBUI_ENV_NAMES, managed_env_names

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
}


def test_managed_names_are_every_variable_the_renderer_can_set() -> None:
    assert managed_env_names() == MANAGED


def test_every_managed_name_is_one_open_webui_reads() -> None:
    assert MANAGED - OPENWEBUI_ENV_NAMES == set()
