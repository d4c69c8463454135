"""Settings shared by every service. Each service subclasses `ServiceSettings` with its own
env prefix (RIPPLE_WATCHER_, RIPPLE_TRANSLATOR_, RIPPLE_XDS_) and passes the object down."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_", frozen=True, extra="ignore")

    log_level: str = Field(default="INFO", description="structlog level: DEBUG, INFO, WARNING")
    log_json: bool = Field(default=True, description="JSON lines (False: human console lines)")
    otlp_endpoint: str | None = Field(
        default=None,
        description=(
            "OTLP/gRPC collector, e.g. http://127.0.0.1:14317 (https:// for TLS); unset = the "
            "standard OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, or off"
        ),
    )
    health_port: int = Field(default=0, description="health/readiness HTTP port; 0 = off")
