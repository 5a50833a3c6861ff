"""SharedServices under the mock engine: its children's names and the aliases that keep their URNs."""
from __future__ import annotations

from plan.engine import Evaluation

# Written out by hand: each child's name now, and the name it had before it was named from the component.
RENAMED = {
    "shared-postgres-password": "postgres-password", "shared-redis-password": "redis-password",
    "shared-qdrant-api-key": "qdrant-api-key", "shared-object-storage-access-key": "object-storage-access-key",
    "shared-object-storage-secret-key": "object-storage-secret-key",
    "shared-postgres": "postgres", "shared-postgres-data": "postgres-data",
    "shared-redis": "redis", "shared-redis-data": "redis-data",
    "shared-qdrant": "qdrant", "shared-qdrant-data": "qdrant-data",
    "shared-minio": "minio", "shared-minio-data": "minio-data",
    "shared-object-storage-bucket": "object-storage-bucket",
}


def test_children_are_named_from_the_component_and_alias_their_earlier_names(prod: Evaluation) -> None:
    children = {r.name: r for r in prod.resources if r.parent.endswith("SharedServices::shared")}
    assert set(children) == set(RENAMED)
    for name, r in children.items():
        assert [a.get("name") for a in r.aliases] == [RENAMED[name]], name
