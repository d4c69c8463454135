"""Settings of the watcher service (environment variables prefixed RIPPLE_WATCHER_)."""

from __future__ import annotations

import enum
import json
from typing import Annotated, Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from ripple_common.envelope import EVENTS_TOPIC
from ripple_common.kafka_security import KafkaSecuritySettings
from ripple_common.kafka_sizes import MAX_MESSAGE_BYTES
from ripple_common.settings import ServiceSettings
from ripple_watcher.selectors import parse_selector

DEFAULT_KINDS = (
    "Namespace",
    "IngressClass",
    "Ingress",
    "Service",
    "EndpointSlice",
    "Secret",
    "Gateway",
    "HTTPRoute",
)


class Compression(enum.StrEnum):
    """The producer's compression codec (zstd and lz4 need the cramjam package)."""

    ZSTD = "zstd"
    LZ4 = "lz4"
    GZIP = "gzip"
    NONE = "none"


class WatcherSettings(ServiceSettings, KafkaSecuritySettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_WATCHER_", frozen=True, extra="ignore")

    kubeconfig: str | None = Field(
        default=None, description="kubeconfig path; unset = in-cluster service account"
    )
    kafka_bootstrap: str = Field(default="127.0.0.1:19092", description="Kafka bootstrap servers")
    topic: str = Field(default=EVENTS_TOPIC, description="topic the envelopes go to")
    client_id: str = Field(default="ripple-watcher", description="Kafka client id")
    kinds: tuple[str, ...] = Field(
        default=DEFAULT_KINDS,
        description="kinds to watch (JSON list); Gateway/HTTPRoute wait until their CRDs exist",
    )
    tenant_label: str | None = Field(
        default=None,
        description="namespace label whose value overrides the tenant (default: the namespace)",
    )
    ingress_classes: Annotated[frozenset[str] | None, NoDecode] = Field(
        default=None,
        description="publish only Ingresses of these IngressClass names (comma-separated or "
        "a JSON list); the class is spec.ingressClassName, else the legacy annotation "
        "kubernetes.io/ingress.class. An Ingress whose class leaves the set is published as "
        "DELETED, one that enters it as ADDED. IngressClass objects are always published. "
        "Unset = every Ingress",
    )
    ingress_include_unclassed: bool = Field(
        default=False,
        description="with INGRESS_CLASSES: also publish Ingresses that name no class",
    )
    namespace_selector: str | None = Field(
        default=None,
        description="Kubernetes label selector on Namespaces (e.g. 'ripple.io/managed=true', "
        "'env in (prod,staging)', '!legacy'; comma = and): only objects of matching "
        "namespaces (and those Namespaces) are published. A namespace relabelled out of it "
        "has its objects published as DELETED, one relabelled into it as ADDED. Unset or "
        "empty = every namespace",
    )
    secrets_per_namespace: bool = Field(
        default=False,
        description="list and watch Secrets namespace by namespace, only in the namespaces "
        "NAMESPACE_SELECTOR selects (required): the strict RBAC mode, where the watcher may read "
        "Secrets only where a RoleBinding allows it (deploy/k8s/components/"
        "watcher-secrets-per-namespace); one watch connection per selected namespace; a "
        "namespace without the RoleBinding is skipped. False: one cluster-wide list and watch",
    )
    sealing_key: SecretStr | None = Field(
        default=None,
        description="base64 AES key (16/24/32 bytes) sealing TLS private keys; required to "
        "watch Secrets",
    )
    linger_ms: int = Field(default=5, ge=0, description="producer linger (batching), ms")
    max_batch_bytes: int = Field(default=262_144, gt=0, description="producer batch size, bytes")
    kafka_request_timeout_ms: int = Field(default=30_000, gt=0, description="Kafka request timeout")
    kafka_compression: Compression = Field(
        default=Compression.ZSTD,
        description="producer compression: zstd, lz4, gzip or none (Kubernetes objects of up "
        "to ~1.5 MB compress to a fraction; docs/deploy.md)",
    )
    kafka_max_message_bytes: int = Field(
        default=MAX_MESSAGE_BYTES,
        ge=65_536,
        description="largest message (compressed record batch) the events topic takes: its "
        "max.message.bytes. An object whose envelope does not fit even compressed is published "
        "as a TOO_LARGE marker (the translator reports it on the object, not served). The "
        "smaller of this and the topic's own setting applies",
    )
    kafka_configure_topic: bool = Field(
        default=True,
        description="at start, raise the topic's max.message.bytes to KAFKA_MAX_MESSAGE_BYTES "
        "when it is lower (needs DescribeConfigs and AlterConfigs on the topic); false = only "
        "read it",
    )
    max_in_flight: int = Field(
        default=1_000, ge=1, description="undelivered sends per kind before the watch waits"
    )
    page_size: int = Field(default=500, ge=1, description="list page size")
    watch_timeout_seconds: int = Field(default=300, ge=1, description="server-side watch timeout")
    idle_timeout_seconds: float = Field(
        default=90.0, gt=0, description="no event nor bookmark for this long: reconnect"
    )
    backoff_initial_seconds: float = Field(default=0.2, gt=0, description="first retry delay")
    backoff_max_seconds: float = Field(default=30.0, gt=0, description="longest retry delay")
    absent_poll_seconds: float = Field(
        default=30.0, gt=0, description="poll interval for kinds not served (CRD missing)"
    )
    lease_namespace: str | None = Field(
        default=None,
        description="namespace of the per-kind Leases (one active replica per kind); "
        "unset = no leader election (run one replica)",
    )
    lease_duration_seconds: int = Field(default=15, ge=2, description="Lease duration")
    lease_renew_seconds: float = Field(default=5.0, gt=0, description="Lease renew interval")
    identity: str | None = Field(
        default=None, description="holder identity in Leases; unset = host-pid-random"
    )
    health_host: str = Field(
        default="0.0.0.0", description="address of the health/readiness/metrics HTTP server"
    )
    stop_flush_timeout_seconds: float = Field(
        default=10.0, gt=0, description="on SIGTERM, how long to wait for pending deliveries"
    )

    @field_validator("ingress_classes", mode="before")
    @classmethod
    def _split_classes(cls, value: Any) -> Any:
        """`a,b` or `["a","b"]` from the environment; blank = unset."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]

    @field_validator("namespace_selector")
    @classmethod
    def _check_selector(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_selector(value)  # SelectorError (a ValueError): a validation error
        return value.strip()

    @model_validator(mode="after")
    def _per_namespace_needs_a_selector(self) -> Self:
        if self.secrets_per_namespace and self.namespace_selector is None:
            raise ValueError(
                "RIPPLE_WATCHER_SECRETS_PER_NAMESPACE needs RIPPLE_WATCHER_NAMESPACE_SELECTOR "
                "(the tenant namespaces whose Secrets the watcher may read)"
            )
        return self
