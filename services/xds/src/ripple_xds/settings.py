"""Settings of the xds service (environment variables prefixed RIPPLE_XDS_)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings
from ripple_xds.identity import GatewayPolicy
from ripple_xds.server import DEFAULT_MAX_REQUEST_BYTES

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
    gateway_https_address: str | None = Field(
        default=None,
        description="address of the gateway's HTTPS listener (in Envoy); unset: "
        "gateway_http_address",
    )
    gateway_https_port: int = Field(
        default=10443,
        description="port of the gateway's HTTPS listener (in Envoy; one filter chain per "
        "TLS host, certificates by SDS); 0: no HTTPS listener",
    )
    default_certificate_file: Path | None = Field(
        default=None,
        description="PEM certificate chain of the gateway's default certificate (ingress-nginx's "
        "--default-ssl-certificate; e.g. a TLS Secret mounted as files): presented on HTTPS to "
        "hosts without a usable certificate of their own, unknown hosts and clients without "
        "SNI. Unset: a self-signed certificate generated at start (as ingress-nginx's fake "
        "certificate). Its key is served by SDS only, as tenants' keys (docs/xds.md)",
    )
    default_certificate_key_file: Path | None = Field(
        default=None, description="PEM private key of default_certificate_file"
    )
    use_forwarded_headers: bool = Field(
        default=False,
        description="ingress-nginx's use-forwarded-headers: the client address (source ranges, "
        "rate limits, X-Forwarded-For upstream) is taken from forwarded_for_header, "
        "trusting trusted_hops proxies in front of the gateway. Off: the connection's peer",
    )
    forwarded_for_header: str = Field(
        default="X-Forwarded-For",
        description="ingress-nginx's forwarded-for-header: the header holding the client "
        "address when use_forwarded_headers (another header than X-Forwarded-For: its whole "
        "value is the address, e.g. CF-Connecting-IP)",
    )
    trusted_hops: int = Field(
        default=1,
        description="with use_forwarded_headers and X-Forwarded-For: the client address is "
        "this many addresses from the right of X-Forwarded-For (Envoy xff_num_trusted_hops: "
        "one per load balancer in front of the gateway), 1..16",
    )
    compute_full_forwarded_for: bool = Field(
        default=False,
        description="ingress-nginx's compute-full-forwarded-for: X-Forwarded-For sent upstream "
        "is the incoming list plus the peer's address. Off: the client address alone "
        "(the incoming value is sent as X-Original-Forwarded-For either way)",
    )
    use_proxy_protocol: bool = Field(
        default=False,
        description="ingress-nginx's use-proxy-protocol: the gateway's HTTP and HTTPS listeners "
        "expect a PROXY protocol (v1/v2) header on every connection; its source address is "
        "the client address",
    )
    external_name_services: bool = Field(
        default=False,
        description="serve clusters to Services of type ExternalName (Envoy resolves the "
        "name). Off (the default): such clusters are not served, as a tenant could name an "
        "internal host; see external_name_denied_suffixes and docs/xds.md",
    )
    external_name_denied_suffixes: list[str] = Field(
        default_factory=lambda: ["svc", "cluster.local", "internal", "local"],
        description="with external_name_services: ExternalName targets never served when equal "
        "to one of these names or ending with '.' + one (cluster-internal names); 'localhost', "
        "loopback and link-local addresses are never served (as ingress-nginx)",
    )
    sealing_key: SecretStr | None = Field(
        default=None,
        description="base64 AES key that opens sealed TLS private keys of Secret resources "
        "(the operator's key, as RIPPLE_TRANSLATOR_SEALING_KEY)",
    )
    gateways: dict[str, list[str]] = Field(
        default_factory=dict,
        description='gateways (JSON: name -> tenants: names, name prefixes with a trailing "*" '
        'such as "team-a-*", or "*" = all), e.g. {"edge": ["*"], "blue": ["t1", "team-b-*"]}; '
        "needs mTLS (tls_client_ca_file): a node belongs to the "
        "gateway its client certificate names (URI SAN spiffe://<trust domain>/gateway/<name>, "
        "else a DNS SAN or common name equal to a gateway) and gets that gateway's tenants "
        "only; a node whose certificate names no configured gateway, or whose node.cluster or "
        'metadata "ripple.gateway" claims another, gets nothing. The replica loads, follows '
        "and holds only the tenants its gateways see (one xds Deployment per gateway group "
        "keeps its memory to that group's). Empty: every node gets every tenant",
    )
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate chain of the ADS server (enables TLS)"
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of the ADS server")
    tls_client_ca_file: Path | None = Field(
        default=None,
        description="PEM CA bundle verifying client certificates: mTLS, every Envoy must "
        "present a certificate it signed; the certificate names the node's gateway, and only "
        "such nodes are served secrets (SDS)",
    )
    insecure_dev_secrets: bool = Field(
        default=False,
        description="DEVELOPMENT ONLY: serve secrets (SDS: opened TLS private keys) to clients "
        "without a verified client certificate (plaintext, or TLS without "
        "tls_client_ca_file), i.e. to anyone who can reach the ADS port. Off: without mTLS "
        "every secret request closes the stream with PERMISSION_DENIED and no HTTPS listener "
        "is built",
    )
    health_host: str = Field(
        default="127.0.0.1", description="address of the health/readiness/metrics endpoint"
    )
    max_request_bytes: int = Field(
        default=DEFAULT_MAX_REQUEST_BYTES,
        ge=4 * 2**20,
        description="largest xDS request a client may send (grpc's default is 4 MiB). A "
        "gateway reconnecting lists every resource it holds in its first Delta request "
        "(initial_resource_versions): about 70 bytes per host, so 4 MiB stopped a gateway "
        "of 200,000 hosts from ever resuming its stream (RESOURCE_EXHAUSTED)",
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
    sla_s: float = Field(
        default=5.0,
        description="propagation SLA: a change ACKed later than this after its observation "
        "or after the API's own time of the change (api_ack, docs/tracing.md) is logged as an "
        "SLA breach (with its trace id) and counted",
    )
    tenant_buckets: int = Field(
        default=8, description="tenant buckets (a hash of the tenant) of the propagation metric"
    )
    propagation_ttl_s: float = Field(
        default=300.0, description="how long an applied change waits for its ACKs to be measured"
    )

    @model_validator(mode="after")
    def _tls_files(self) -> XdsSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mTLS) needs tls_cert_file and tls_key_file")
        if self.gateways and self.tls_client_ca_file is None:
            raise ValueError(
                "gateways (RIPPLE_XDS_GATEWAYS) need mTLS (RIPPLE_XDS_TLS_CLIENT_CA_FILE with "
                "RIPPLE_XDS_TLS_CERT_FILE and RIPPLE_XDS_TLS_KEY_FILE): only a client "
                "certificate proves a node's gateway; node.cluster and metadata are the "
                "client's to choose"
            )
        if (self.default_certificate_file is None) != (self.default_certificate_key_file is None):
            raise ValueError(
                "default_certificate_file and default_certificate_key_file go together"
            )
        if self.gateways and not self.require_node_id:
            raise ValueError("gateways (RIPPLE_XDS_GATEWAYS) need require_node_id")
        return self

    @property
    def mtls(self) -> bool:
        """Whether every client must present a certificate signed by tls_client_ca_file."""
        return self.tls_client_ca_file is not None

    @field_validator("gateways")
    @classmethod
    def _gateway_patterns(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        GatewayPolicy.of(value)  # ValueError naming the bad gateway or tenant pattern
        return value

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

    @field_validator("trusted_hops")
    @classmethod
    def _hops_in_range(cls, value: int) -> int:
        if not 1 <= value <= 16:
            raise ValueError("trusted_hops must be in 1..16")
        return value

    @field_validator("forwarded_for_header")
    @classmethod
    def _header_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", value):
            raise ValueError(f"forwarded_for_header {value!r} is not an HTTP header name")
        return value

    @field_validator("read_count", "load_batch", "log_every", "tenant_buckets")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("must be at least 1")
        return value
