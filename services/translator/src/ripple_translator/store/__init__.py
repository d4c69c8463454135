"""The translator's persistence layer (Redis; every key from `KeyLayout`, docs/redis-layout.md):

- `model`: the `TenantStore` Protocol (a tenant's versions, resources and inputs), its values
  and errors, the pure diffing;
- `redis_store`: `RedisTenantStore` (the tenant's version and inputs in one Lua script, the
  change stream);
- `redis_hosts`: `RedisHostRegistry` (`hosts.HostRegistry`: the host scripts, the tenants'
  recorded host states, the host notices), on the same client and layout (`redis_adapter`);
- `inputs`: the stored inputs' values and the partition state (`PartitionStore`,
  `RedisPartitionStore`);
- `loader`: many tenants in one round trip (`RedisTenantLoader`).
"""

from ripple_common.store_contract import ChangeEntry, KafkaOffset, KeyLayout
from ripple_translator.store.inputs import (
    InputChanges,
    InputCheckpoint,
    PartitionCheckpoint,
    PartitionStore,
    RedisPartitionStore,
)
from ripple_translator.store.loader import RedisTenantLoader, StoreTenantLoader, TenantLoader
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
from ripple_translator.store.redis_hosts import RedisHostRegistry
from ripple_translator.store.redis_store import RedisTenantStore

__all__ = [
    "AnnounceError",
    "ChangeEntry",
    "Checkpoint",
    "Diff",
    "InputChanges",
    "InputCheckpoint",
    "KafkaOffset",
    "KeyLayout",
    "PartitionCheckpoint",
    "PartitionStore",
    "PositionFencedError",
    "RedisHostRegistry",
    "RedisPartitionStore",
    "RedisTenantLoader",
    "RedisTenantStore",
    "StoreError",
    "StoreTenantLoader",
    "TenantLoader",
    "TenantStore",
    "VersionConflictError",
    "apply_diff",
    "diff_resources",
]
