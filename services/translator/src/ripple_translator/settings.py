"""Settings of the translator service (environment variables prefixed RIPPLE_TRANSLATOR_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from ripple_common.envelope import EVENTS_TOPIC
from ripple_common.kafka_security import KafkaSecuritySettings
from ripple_common.settings import ServiceSettings
from ripple_translator.engine import RESERVED_CONNECTIONS
from ripple_translator.translate import DEFAULT_CONTROLLER, DEFAULT_GATEWAY_CLASS


class TranslatorSettings(ServiceSettings, KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_TRANSLATOR_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    redis_url: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
    topic: str = Field(default=EVENTS_TOPIC, description="events topic to consume")
    group_id: str = Field(default="ripple-translator", description="Kafka consumer group")
    redis_prefix: str = Field(default="ripple", description="prefix of every Redis key")
    redis_max_connections: int = Field(
        default=64,
        ge=1,
        description="size of the Redis connection pool; must exceed max_concurrent_writes by "
        f"at least {RESERVED_CONNECTIONS} (loads, partition state)",
    )
    redis_pool_timeout_s: float = Field(
        default=20.0, gt=0, description="longest wait for a free connection of the Redis pool"
    )
    max_concurrent_writes: int = Field(
        default=32,
        ge=1,
        description="tenant writes in flight at once (each holds one Redis connection); "
        "further dirty tenants wait their turn in order, coalescing their events",
    )
    stream_maxlen: int = Field(default=100_000, description="approximate ripple.changes length")
    poll_ms: int = Field(
        default=100, description="longest wait for records; also the commit cadence when idle"
    )
    max_records: int = Field(default=1000, description="records fetched per poll at most")
    revoke_timeout_s: float = Field(
        default=10.0, description="how long a revoked partition's writes may take to finish"
    )
    drain_timeout_s: float = Field(
        default=10.0, description="how long writes in flight may take to finish at shutdown"
    )
    controllers: frozenset[str] = Field(
        default=frozenset({DEFAULT_CONTROLLER}),
        description="IngressClass controllers served (JSON list)",
    )
    extra_class_names: frozenset[str] = Field(
        default=frozenset(), description="IngressClass names served without such an object"
    )
    watch_without_class: bool = Field(
        default=False, description="serve Ingresses without class (ingress-nginx's behaviour)"
    )
    gateway_classes: frozenset[str] = Field(
        default=frozenset({DEFAULT_GATEWAY_CLASS}),
        description="Gateway API gatewayClassNames whose Gateways' HTTPRoutes are served "
        "(JSON list)",
    )
    sealing_key: SecretStr | None = Field(
        default=None,
        description="base64 AES key (16/24/32 bytes) opening the TLS private keys the watcher "
        "sealed (the watcher's RIPPLE_WATCHER_SEALING_KEY) and sealing them again in the Secret "
        "resources stored in Redis (the xds server opens them with RIPPLE_XDS_SEALING_KEY)",
    )

    host_arbitration: bool = Field(
        default=True,
        description="claim hosts across tenants in Redis before writing (a host belongs to "
        "the first claim of it that still stands; docs/host-ownership.md)",
    )
    host_release_grace_s: float = Field(
        default=60.0,
        ge=0,
        description="how long a host its owner stops asking for (Ingress deleted, host "
        "removed) stays held for that owner: re-created within it, the owner keeps the host; "
        "after it, the first standing claim of another tenant gets it (0: at once)",
    )
    host_tenant_domain: str = Field(
        default="",
        description="optional policy: a tenant may only claim this domain and names under it; "
        "'{tenant}' is replaced by the tenant, e.g. '{tenant}.apps.example.com' (empty: any "
        "host)",
    )
    host_allowed: dict[str, frozenset[str]] = Field(
        default_factory=dict,
        description="with host_tenant_domain: per tenant, further hosts it may claim (exact, or "
        "'.suffix'), as JSON",
    )
    notice_block_ms: int = Field(
        default=1000, ge=1, description="longest blocking read of the host-notice stream"
    )
    events_enabled: bool = Field(
        default=False,
        description="post each diagnostic as a Kubernetes Event on the object it names",
    )
    kubeconfig: str | None = Field(
        default=None, description="kubeconfig for the Events; unset = in-cluster service account"
    )
    events_rate_per_s: float = Field(default=20.0, gt=0, description="Events posted per second")
    events_repeat_after_s: float = Field(
        default=600.0, ge=0, description="the same problem is reported again after this long"
    )
    health_host: str = Field(
        default="127.0.0.1", description="address of the health/readiness/metrics endpoint"
    )
    test_abort_after_write: bool = Field(
        default=False,
        description="TESTS ONLY: exit the process at once (no cleanup) right after the first "
        "tenant version is written, before its Kafka offset is committed",
    )

    @model_validator(mode="after")
    def _writes_fit_the_pool(self) -> Self:
        if self.max_concurrent_writes + RESERVED_CONNECTIONS > self.redis_max_connections:
            raise ValueError(
                f"redis_max_connections ({self.redis_max_connections}) must be at least "
                f"max_concurrent_writes ({self.max_concurrent_writes}) + {RESERVED_CONNECTIONS}"
            )
        return self
