"""`--serve`: the replayed config served to a local Envoy, so a behaviour can be reproduced with
real requests. The xds server is ripple's own (`ripple_xds.server.XdsServer`) over an in-memory
`SnapshotCache` holding the replayed resources plus the gateway's plain-HTTP listener (what
every gateway Envoy gets); everything listens on 127.0.0.1 only. Nothing is written anywhere
but the Envoy bootstrap file."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ripple_common.resources import Resource
from ripple_xds.gateway import http_listener
from ripple_xds.server import XdsServer
from ripple_xds.snapshot import SnapshotCache

NODE_ID = "ripple-replay"


def envoy_bootstrap(*, xds_port: int, admin_port: int) -> dict[str, Any]:
    """A bootstrap for a local Envoy: Delta ADS to the replay's xds server."""
    ads = {"ads": {}, "resource_api_version": "V3"}
    endpoint = {"address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}
    return {
        "node": {"id": NODE_ID, "cluster": NODE_ID},
        "admin": {
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}
        },
        "dynamic_resources": {
            "ads_config": {
                "api_type": "DELTA_GRPC",
                "transport_api_version": "V3",
                "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}],
            },
            "lds_config": ads,
            "cds_config": ads,
        },
        "static_resources": {
            "clusters": [
                {
                    "name": "xds",
                    "type": "STATIC",
                    "connect_timeout": "1s",
                    "typed_extension_protocol_options": {
                        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                            "@type": "type.googleapis.com/"
                            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                            "explicit_http_config": {"http2_protocol_options": {}},
                        }
                    },
                    "load_assignment": {
                        "cluster_name": "xds",
                        "endpoints": [{"lb_endpoints": [{"endpoint": endpoint}]}],
                    },
                }
            ]
        },
    }


async def serve(
    resources: Iterable[Resource],
    *,
    xds_port: int,
    listen_port: int,
    admin_port: int,
    bootstrap: Path,
    out: IO[str],
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or `stop`)."""
    cache = SnapshotCache()
    cache.apply(upserts=[http_listener(address="127.0.0.1", port=listen_port), *resources])
    server = XdsServer(cache, host="127.0.0.1", port=xds_port, grace_seconds=0.5)
    await server.start()
    stopping = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stopping.set)
    try:
        config = json.dumps(envoy_bootstrap(xds_port=server.port, admin_port=admin_port), indent=2)
        await asyncio.to_thread(bootstrap.write_text, config)
        out.write(
            f"# serving {len(cache) - 1} resources: xds on 127.0.0.1:{server.port}, the "
            f"gateway listener on 127.0.0.1:{listen_port}\n"
            f"# envoy -c {bootstrap} --concurrency 1   "
            f"# then: curl -H 'Host: <host>' http://127.0.0.1:{listen_port}/\n"
        )
        out.flush()
        await stopping.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await server.stop()
