"""Builders shared by the xds unit tests: resources with opaque bodies, requests, and the
ACK/NACK a client would send for a response."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Protocol, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import config_source_pb2

from ripple_common.resources import Resource, TypeUrl
from ripple_xds.delta import DeltaRequest, DeltaResponse
from ripple_xds.protocol import Step
from ripple_xds.snapshot import SnapshotCache
from ripple_xds.sotw import SotwRequest, SotwResponse

LDS = TypeUrl.LISTENER
CDS = TypeUrl.CLUSTER
EDS = TypeUrl.ENDPOINT
RDS = TypeUrl.ROUTE
SRDS = TypeUrl.SCOPED_ROUTE
SDS = TypeUrl.SECRET

R_co = TypeVar("R_co", covariant=True)


def res(type_url: TypeUrl, name: str, body: str = "v1") -> Resource:
    return Resource(type_url, name, f"{name}:{body}".encode())


def eds_cluster(name: str, *, endpoints: str = "", connect_timeout_s: int = 1) -> Resource:
    """A real EDS Cluster over ADS whose EDS service name is `endpoints` ("": its own name);
    `connect_timeout_s` changes its content."""
    msg = cluster_pb2.Cluster(
        name=name,
        type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=config_source_pb2.ConfigSource(
                ads=config_source_pb2.AggregatedConfigSource(),
                resource_api_version=config_source_pb2.V3,
            ),
            service_name=endpoints,
        ),
    )
    msg.connect_timeout.seconds = connect_timeout_s
    return Resource(CDS, name, msg.SerializeToString(deterministic=True))


def cache_with(*resources: Resource) -> SnapshotCache:
    cache = SnapshotCache()
    cache.apply(upserts=resources)
    return cache


def names(response: SotwResponse | DeltaResponse) -> list[str]:
    return sorted(e.name for e in response.resources)


def bodies(response: SotwResponse | DeltaResponse) -> dict[str, bytes]:
    return {e.name: e.resource.body for e in response.resources}


def sotw_req(
    type_url: TypeUrl | str, *resource_names: str, version: str = "", nonce: str = ""
) -> SotwRequest:
    return SotwRequest(
        type_url=str(type_url),
        resource_names=resource_names,
        version_info=version,
        response_nonce=nonce,
    )


def sotw_ack(response: SotwResponse, *resource_names: str) -> SotwRequest:
    return SotwRequest(
        type_url=response.type_url.value,
        resource_names=resource_names,
        version_info=response.version_info,
        response_nonce=response.nonce,
    )


def sotw_nack(
    response: SotwResponse, *resource_names: str, kept: str = "", error: str = "bad"
) -> SotwRequest:
    return SotwRequest(
        type_url=response.type_url.value,
        resource_names=resource_names,
        version_info=kept,
        response_nonce=response.nonce,
        error=error,
    )


def delta_req(
    type_url: TypeUrl | str,
    *,
    sub: tuple[str, ...] = (),
    unsub: tuple[str, ...] = (),
    initial: dict[str, str] | None = None,
    nonce: str = "",
) -> DeltaRequest:
    return DeltaRequest(
        type_url=str(type_url),
        subscribe=sub,
        unsubscribe=unsub,
        initial_resource_versions=initial or {},
        response_nonce=nonce,
    )


def delta_ack(response: DeltaResponse) -> DeltaRequest:
    return DeltaRequest(type_url=response.type_url.value, response_nonce=response.nonce)


def delta_nack(response: DeltaResponse, *, error: str = "bad") -> DeltaRequest:
    return DeltaRequest(
        type_url=response.type_url.value, response_nonce=response.nonce, error=error
    )


class _Machine(Protocol[R_co]):
    def on_change(self, names: Mapping[TypeUrl, Collection[str]]) -> Step[R_co]: ...


def push(
    cache: SnapshotCache,
    stream: _Machine[R_co],
    *upserts: Resource,
    removals: tuple[tuple[TypeUrl, str], ...] = (),
) -> Step[R_co]:
    """Change the cache and tell the stream, as the server does."""
    change = cache.apply(upserts=upserts, removals=removals)
    return stream.on_change(change.names if change is not None else {})
