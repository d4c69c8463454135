"""Settings of the xds service (environment variables prefixed RIPPLE_XDS_)."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings

# redis-py's default socket timeout: an idle XREAD BLOCK must return well before it.
REDIS_SOCKET_TIMEOUT_MS = 5_000


class XdsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_XDS_", frozen=True, extra="ignore")

    redis_url: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
    redis_prefix: str = Field(
        default="ripple",
        description="prefix of every Redis key; must equal RIPPLE_TRANSLATOR_REDIS_PREFIX",
    )
    listen: str = Field(default="127.0.0.1:18000", description="gRPC ADS listen address")
    gateway_http_address: str = Field(
        default="0.0.0.0", description="address of the gateway's plain-HTTP listener (in Envoy)"
    )
    gateway_http_port: int = Field(
        default=10080, description="port of the gateway's plain-HTTP listener (in Envoy)"
    )
    health_host: str = Field(
        default="127.0.0.1", description="address of the health/readiness/metrics endpoint"
    )
    shutdown_grace_s: float = Field(
        default=5.0,
        description="on SIGTERM, how long open ADS streams may last after GOAWAY",
    )
    require_node_id: bool = Field(
        default=True, description="refuse ADS streams whose first request has no node id"
    )
    block_ms: int = Field(
        default=1_000,
        description="longest XREAD BLOCK on ripple.changes (below the 5 s socket timeout)",
    )
    read_count: int = Field(default=500, description="change entries read per round")
    load_batch: int = Field(default=200, description="tenants read per pipelined round at load")
    log_every: int = Field(default=1_000, description="log load progress every N tenants")

    @field_validator("block_ms")
    @classmethod
    def _block_below_socket_timeout(cls, value: int) -> int:
        if not 0 < value < REDIS_SOCKET_TIMEOUT_MS:
            raise ValueError(f"block_ms must be in 1..{REDIS_SOCKET_TIMEOUT_MS - 1}")
        return value

    @field_validator("gateway_http_port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("gateway_http_port must be in 1..65535")
        return value

    @field_validator("read_count", "load_batch", "log_every")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value
