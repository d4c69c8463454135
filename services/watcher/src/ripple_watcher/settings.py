"""Settings of the watcher service (environment variables prefixed RIPPLE_WATCHER_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings


class WatcherSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_WATCHER_", frozen=True, extra="ignore")

    kubeconfig: str | None = Field(
        default=None, description="kubeconfig path; unset = in-cluster service account"
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
