"""ingress-nginx's `upstream-keepalive-timeout` on every cluster: Envoy closes an upstream
connection idle that long (its own default is an hour: one open file per cluster used)."""

from __future__ import annotations

from typing import Any

import pytest
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2

from ripple_translator.translate import TranslateOptions
from ripple_translator.translate.envoy import HTTP_PROTOCOL_OPTIONS
from tests.unit.translator import decode, k8s


def protocol_options(cluster: Any) -> Any:
    options = http_protocol_options_pb2.HttpProtocolOptions()
    assert cluster.typed_extension_protocol_options[HTTP_PROTOCOL_OPTIONS].Unpack(options)
    return options


def test_every_cluster_closes_idle_upstream_connections_after_60_s_by_default() -> None:
    options = protocol_options(decode.cluster(k8s.run(k8s.ingress("shop"))))
    assert options.common_http_protocol_options.idle_timeout.ToMilliseconds() == 60_000
    assert options.explicit_http_config.HasField("http_protocol_options")


@pytest.mark.parametrize(("seconds", "ms"), [(1.5, 1_500), (0, 0), (600, 600_000)])
def test_the_keepalive_timeout_is_configurable(seconds: float, ms: int) -> None:
    opts = TranslateOptions(upstream_keepalive_timeout_s=seconds)
    options = protocol_options(decode.cluster(k8s.run(k8s.ingress("shop"), options=opts)))
    assert options.common_http_protocol_options.idle_timeout.ToMilliseconds() == ms


def test_an_http2_backend_keeps_http2_and_the_timeout() -> None:
    ing = k8s.ingress("shop", annotations=k8s.nginx(**{"backend-protocol": "GRPC"}))
    options = protocol_options(decode.cluster(k8s.run(ing)))
    assert options.explicit_http_config.HasField("http2_protocol_options")
    assert options.common_http_protocol_options.idle_timeout.ToMilliseconds() == 60_000
