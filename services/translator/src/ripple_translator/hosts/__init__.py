"""Host ownership, in one package (docs/host-ownership.md):

- `model`: the values (`ClaimOutcome`, `HostState`, `HostView`, `HostNotice`) and the
  `HostRegistry` Protocol the arbiter uses (Redis: `store.RedisHostRegistry`);
- `rules`: the pure rules (who owns a host after a claim or a withdrawal, what one write
  does with its claim outcomes, which recorded states are stale, which hosts a tenant may
  claim at all: `HostPolicy`);
- `arbiter`: `HostArbiter`, which the writer calls around each tenant write, and the
  tenant's `HostCache`;
- `notices`: `NoticeFollower`, which reads the notices and wakes the owned tenants they name.
"""

from ripple_translator.hosts.arbiter import HostArbiter, HostCache
from ripple_translator.hosts.model import (
    ClaimOutcome,
    ClaimStatus,
    HostNotice,
    HostRegistry,
    HostState,
    HostView,
)
from ripple_translator.hosts.notices import NoticeFollower
from ripple_translator.hosts.rules import (
    HostFilter,
    HostOutcome,
    HostPolicy,
    HostRecord,
    claim_host,
    decide,
    first_claim,
    from_micros,
    host_options,
    host_stale,
    to_micros,
    wanted_hosts,
    withdraw_host,
)

__all__ = [
    "ClaimOutcome",
    "ClaimStatus",
    "HostArbiter",
    "HostCache",
    "HostFilter",
    "HostNotice",
    "HostOutcome",
    "HostPolicy",
    "HostRecord",
    "HostRegistry",
    "HostState",
    "HostView",
    "NoticeFollower",
    "claim_host",
    "decide",
    "first_claim",
    "from_micros",
    "host_options",
    "host_stale",
    "to_micros",
    "wanted_hosts",
    "withdraw_host",
]
