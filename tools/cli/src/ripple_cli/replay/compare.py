"""The replayed resources against what the translator stored in Redis (pure). Any difference
is a divergence: a bug of the translator, of the store or of the replay, or a stored entry that
was changed by hand. Bytes are compared, so "equal" means byte-identical."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ripple_cli.replay.run import Change
from ripple_common.resources import PUSH_ORDER, Resource
from ripple_translator.store.model import ResourceKey

_TYPE_RANK = {t: i for i, t in enumerate(PUSH_ORDER)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    tenant: str
    stored_version: int
    # The offset the stored version covers (next offset): the replay stopped there.
    offset: int | None
    # Each difference as a Change from the stored resource (before) to the replayed (after).
    differences: tuple[Change, ...]

    @property
    def diverged(self) -> bool:
        return bool(self.differences)


def compare(
    replayed: Mapping[ResourceKey, Resource],
    stored: Iterable[Resource],
    *,
    tenant: str,
    stored_version: int,
    offset: int | None,
    normalize: Callable[[Resource], Resource | None] | None = None,
) -> Comparison:
    """`normalize` maps each resource of both sides first (e.g. opening sealed private keys,
    which are sealed with a random nonce: equal keys, different bytes); None keeps it as is."""
    stored_map = {(r.type_url, r.name): _body(r, normalize) for r in stored}
    ours = {key: _body(r, normalize) for key, r in replayed.items()}
    keys = sorted(set(stored_map) | set(ours), key=lambda k: (_TYPE_RANK[k[0]], k[1]))
    differences = []
    for key in keys:
        before = stored_map.get(key)
        after = ours.get(key)
        if before != after:
            differences.append(Change(key[0], key[1], before, after))
    return Comparison(
        tenant=tenant,
        stored_version=stored_version,
        offset=offset,
        differences=tuple(differences),
    )


def _body(resource: Resource, normalize: Callable[[Resource], Resource | None] | None) -> bytes:
    if normalize is None:
        return resource.body
    opened = normalize(resource)
    return resource.body if opened is None else opened.body
