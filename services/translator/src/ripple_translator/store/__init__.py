"""Per-tenant resource storage (Redis): the translator's side of the Redis contract."""

from ripple_common.store_contract import ChangeEntry, KafkaOffset, KeyLayout
from ripple_translator.store.model import (
    AnnounceError,
    Checkpoint,
    Diff,
    PositionFencedError,
    StoreError,
    TenantStore,
    VersionConflictError,
    apply_diff,
    diff_resources,
)
from ripple_translator.store.redis_store import RedisTenantStore

__all__ = [
    "AnnounceError",
    "ChangeEntry",
    "Checkpoint",
    "Diff",
    "KafkaOffset",
    "KeyLayout",
    "PositionFencedError",
    "RedisTenantStore",
    "StoreError",
    "TenantStore",
    "VersionConflictError",
    "apply_diff",
    "diff_resources",
]
