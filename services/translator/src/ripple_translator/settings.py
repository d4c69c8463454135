"""Settings of the translator service (environment variables prefixed RIPPLE_TRANSLATOR_)."""

from __future__ import annotations

from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ripple_common.envelope import EVENTS_TOPIC
from ripple_common.kafka_security import KafkaSecuritySettings
from ripple_common.settings import ServiceSettings
from ripple_translator.consumer import GroupTuning
from ripple_translator.engine import RESERVED_CONNECTIONS
from ripple_translator.translate import DEFAULT_CONTROLLER, DEFAULT_GATEWAY_CLASS
from ripple_translator.translate.default_backend import parse_default_backend
from ripple_translator.translate.translate import DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_S


class TranslatorSettings(ServiceSettings, KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_TRANSLATOR_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    redis_url: str = Field(default="redis://127.0.0.1:16379/0", description="Redis URL")
    topic: str = Field(default=EVENTS_TOPIC, description="events topic to consume")
    group_id: str = Field(default="ripple-translator", description="Kafka consumer group")
    group_instance_id: str | None = Field(
        default=None,
        description="static group membership (KIP-345): a stable id per replica, the pod name "
        "in deploy/k8s (Downward API); a replica restarted with the same id within "
        "session_timeout_ms keeps its partitions and the others are not rebalanced, but a "
        "crashed one is taken over only when its session times out (unset or empty: dynamic "
        "membership; docs/deploy.md)",
    )
    session_timeout_ms: int = Field(
        default=6000,
        ge=1000,
        description="consumer-group session timeout: a member silent this long (crashed, "
        "kill -9) loses its partitions to the others; the broker's "
        "group.min.session.timeout.ms (6000 by default) is the lowest it accepts",
    )
    heartbeat_interval_ms: int = Field(
        default=1000,
        ge=100,
        description="consumer-group heartbeat interval (at most a third of the session timeout)",
    )
    max_poll_interval_ms: int = Field(
        default=30000,
        ge=1000,
        description="longest time between two polls before the member is expelled from the "
        "group (the consume loop polls every poll_ms; translations run beside it)",
    )
    rebalance_timeout_ms: int = Field(
        default=60_000,
        ge=1000,
        description="how long the group waits in a rebalance for each member to rejoin; a "
        "member rejoins once its revocation has let its writes finish (revoke_timeout_s). "
        "aiokafka's default, the session timeout, is shorter: a member still finishing its "
        "writes was expelled. A crashed member is detected by the session timeout",
    )
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
    write_pace_factor: float = Field(
        default=1.0,
        ge=0,
        description="fairness: after a tenant write that took c seconds (c >= "
        "write_pace_min_s), that tenant's next write waits write_pace_factor * c, coalescing "
        "its events meanwhile (a flooding tenant takes at most 1/(1+factor) of the time; 0: "
        "no pacing)",
    )
    write_pace_min_s: float = Field(
        default=0.05, ge=0, description="tenant writes shorter than this are never paced"
    )
    offload_objects: int = Field(
        default=500,
        ge=0,
        description="tenants with at least this many objects are translated in a worker "
        "thread (one at a time), so the consume loop and other tenants' writes run meanwhile",
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
    default_backend_service: str | None = Field(
        default=None,
        description="ingress-nginx's --default-backend-service: <namespace>/<service>[:<port "
        "number or name>] (no port: the Service's first) answers every host no Ingress or "
        "HTTPRoute serves, over HTTP and HTTPS, and custom-http-errors without a "
        "default-backend annotation (docs/annotations.md). Written by the translator of the "
        "tenant owning that namespace; set it alike on every translator. Unset: such hosts "
        "get 404",
    )

    upstream_keepalive_timeout_s: float = Field(
        default=DEFAULT_UPSTREAM_KEEPALIVE_TIMEOUT_S,
        ge=0,
        description="ingress-nginx's upstream-keepalive-timeout: the gateway closes an upstream "
        "connection idle this long (every cluster's idle_timeout; Envoy's own default is an "
        "hour, and a gateway with tens of thousands of clusters would keep a file open for "
        "each). 0: open until the backend closes it",
    )

    @field_validator("default_backend_service")
    @classmethod
    def _default_backend(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_default_backend(value)
            return value.strip()
        return None

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

    @field_validator("group_instance_id")
    @classmethod
    def _empty_is_dynamic(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return value.strip()

    @model_validator(mode="after")
    def _group_timing(self) -> Self:
        """The group timings' rules are `GroupTuning`'s (it raises ValueError)."""
        self.group_tuning()
        if self.rebalance_timeout_ms < self.revoke_timeout_s * 1000:
            raise ValueError(
                f"rebalance_timeout_ms ({self.rebalance_timeout_ms}) must not be below "
                f"revoke_timeout_s ({self.revoke_timeout_s} s): a member finishing its writes "
                "would be expelled"
            )
        return self

    def group_tuning(self) -> GroupTuning:
        """How the translator behaves in its consumer group."""
        return GroupTuning(
            instance_id=self.group_instance_id,
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            max_poll_interval_ms=self.max_poll_interval_ms,
            rebalance_timeout_ms=self.rebalance_timeout_ms,
        )

    @model_validator(mode="after")
    def _writes_fit_the_pool(self) -> Self:
        if self.max_concurrent_writes + RESERVED_CONNECTIONS > self.redis_max_connections:
            raise ValueError(
                f"redis_max_connections ({self.redis_max_connections}) must be at least "
                f"max_concurrent_writes ({self.max_concurrent_writes}) + {RESERVED_CONNECTIONS}"
            )
        return self
