"""What one node may see of the snapshot cache: a `CacheView` that hides the resources of
tenants outside the node's gateway (see `identity`). The protocol state machines read the
cache only through it, so a hidden resource is never sent, named in a response or counted
in a version. Pure: no I/O."""

from __future__ import annotations

from collections.abc import Collection

from ripple_common.resources import TypeUrl
from ripple_xds.identity import Gateway
from ripple_xds.snapshot import CacheView, Entry


class GatewayView:
    """`cache` as a node of `gateway` sees it."""

    __slots__ = ("_cache", "_gateway")

    def __init__(self, cache: CacheView, gateway: Gateway) -> None:
        self._cache = cache
        self._gateway = gateway

    def get(self, type_url: TypeUrl, name: str) -> Entry | None:
        if not self._gateway.allows(name):
            return None
        return self._cache.get(type_url, name)

    def names(self, type_url: TypeUrl) -> Collection[str]:
        allows = self._gateway.allows
        return [name for name in self._cache.names(type_url) if allows(name)]


def view_for(cache: CacheView, gateway: Gateway) -> CacheView:
    """The cache itself for a gateway of every tenant with no own listeners to hide, else a
    filtering view."""
    if gateway.tenants is None and not gateway.name:
        return cache
    return GatewayView(cache, gateway)


class WithoutSecrets:
    """`cache` without its Secret resources: what a stream whose client presented no
    verified certificate sees (see `identity.secrets_allowed`)."""

    __slots__ = ("_cache",)

    def __init__(self, cache: CacheView) -> None:
        self._cache = cache

    def get(self, type_url: TypeUrl, name: str) -> Entry | None:
        return None if type_url is TypeUrl.SECRET else self._cache.get(type_url, name)

    def names(self, type_url: TypeUrl) -> Collection[str]:
        return () if type_url is TypeUrl.SECRET else self._cache.names(type_url)


def without_secrets(cache: CacheView) -> CacheView:
    return WithoutSecrets(cache)
