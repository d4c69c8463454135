"""Per-tenant resource storage (Redis): the translator's side of the Redis contract."""

from ripple_common.store_contract import ChangeEntry, KafkaOffset, KeyLayout
from ripple_translator.store.model import (
    AnnounceError,
    Checkpoint,
    ClaimStatus,
    Diff,
    HostClaim,
    HostNotice,
    HostRegistry,
    HostState,
    HostView,
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
    "ClaimStatus",
    "Diff",
    "HostClaim",
    "HostNotice",
    "HostRegistry",
    "HostState",
    "HostView",
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
