"""The columns of Open WebUI's tables the report reads: all its read-only role is granted.

No import beyond the standard library: the Pulumi program renders the grants from it.
"""
from __future__ import annotations

# Every column fleet_analytics/queries.py reads, and all the analytics role may SELECT (granted column by
# column after each migration, components/render/postgres.py): never message content, a password hash, a
# token or a setting, whatever tables or columns a later Open WebUI adds.
COLUMNS_READ: dict[str, tuple[str, ...]] = {
    "alembic_version": ("version_num",),
    "chat_message": ("role", "model_id", "created_at", "usage", "user_id"),
    "user": ("id", "name", "email"),
    "chat": ("created_at",),
    "file": ("created_at", "meta"),
    "knowledge": ("created_at",),
}
