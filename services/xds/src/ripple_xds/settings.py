"""Settings of the xds service (environment variables prefixed RIPPLE_XDS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings


class XdsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_XDS_", frozen=True, extra="ignore")

    redis_url: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
    listen: str = Field(default="127.0.0.1:18000", description="gRPC ADS listen address")
