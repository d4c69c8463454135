"""A proxyless grpc client: `python -m tests.integration.xds.grpc_xds_client xds:///<name>`
with GRPC_XDS_BOOTSTRAP_CONFIG set. It calls the echo method through a channel that grpcio's
built-in xDS client resolves, once per line read from stdin: each line is the reply to wait
for (calls repeat until it comes, or fail after the timeout); it prints `ok <ms>` per line.
A separate process, so grpc's process-wide xDS client starts from this bootstrap alone."""

from __future__ import annotations

import sys
import time
from typing import Any

import grpc

from tests.waiting import eventually_blocking

METHOD = "/ripple.test.Echo/Who"
TIMEOUT_S = 20.0


def _identity(data: bytes) -> bytes:
    return data


def _until_reply(call: Any, expected: bytes) -> None:
    """Call until the reply is `expected` (an RPC error counts as "not yet")."""
    eventually_blocking(
        lambda: call(b"who", timeout=2, wait_for_ready=True),
        until=lambda reply: reply == expected,
        within_s=TIMEOUT_S,
        what=f"the reply {expected!r}",
        ignoring=(grpc.RpcError,),
    )


def main(target: str) -> int:
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            METHOD, request_serializer=_identity, response_deserializer=_identity
        )
        for line in sys.stdin:
            expected = line.strip().encode()
            started = time.monotonic()
            try:
                _until_reply(call, expected)
            except AssertionError as exc:
                print(f"fail {exc}".replace("\n", " "), flush=True)
                return 1
            print(f"ok {(time.monotonic() - started) * 1000:.0f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
