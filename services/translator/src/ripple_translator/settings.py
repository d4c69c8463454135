"""Settings of the translator service (environment variables prefixed RIPPLE_TRANSLATOR_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings


class TranslatorSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_TRANSLATOR_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    redis_url: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
