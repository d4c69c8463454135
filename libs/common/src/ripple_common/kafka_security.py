"""Kafka client security (TLS and SASL), one shape for every Kafka client of ripple.

- `KafkaSecuritySettings`: a settings mixin. A service's settings class inherits it and gets
  `kafka_security_protocol`, `kafka_sasl_*` and `kafka_ssl_*` under its own env prefix
  (RIPPLE_WATCHER_KAFKA_SECURITY_PROTOCOL, RIPPLE_TRANSLATOR_KAFKA_SASL_PASSWORD_FILE, ...).
  Inconsistent settings fail at startup with the variable's name in the message.
- `KafkaSecurity`: the resolved value (password read from its file) the adapters receive;
  `kafka_security()` builds it and fails (KafkaSecurityError) on a configured file that does
  not exist, so a missing Secret mount fails at startup, not at the first connect.
- `security_kwargs`: pure, the aiokafka keyword arguments for SASL and the protocol.
- `client_kwargs`: adds the `ssl_context` (reads the CA and client certificate files); the
  one place a TLS context for Kafka is built. It does what aiokafka's `create_ssl_context`
  does, with the standard library, so this package needs no aiokafka.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings


class KafkaSecurityError(ValueError):
    """Kafka security settings that cannot work (a configured file is missing)."""


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"

    @property
    def tls(self) -> bool:
        return self in (SecurityProtocol.SSL, SecurityProtocol.SASL_SSL)

    @property
    def sasl(self) -> bool:
        return self in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


@dataclass(frozen=True, kw_only=True)
class KafkaSecurity:
    """How a client authenticates to Kafka and checks the brokers. Default: plaintext."""

    protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    mechanism: SaslMechanism = SaslMechanism.PLAIN
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    check_hostname: bool = True


PLAINTEXT = KafkaSecurity()


def security_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka's keyword arguments for `security`, without `ssl_context` (see client_kwargs)."""
    out: dict[str, Any] = {"security_protocol": security.protocol.value}
    if security.protocol.sasl:
        out["sasl_mechanism"] = security.mechanism.value
        out["sasl_plain_username"] = security.username
        out["sasl_plain_password"] = security.password
    return out


def client_kwargs(security: KafkaSecurity) -> dict[str, Any]:
    """`security_kwargs` plus the `ssl_context` a TLS protocol needs: pass these to every
    AIOKafkaProducer, AIOKafkaConsumer and AIOKafkaAdminClient."""
    out = security_kwargs(security)
    if security.protocol.tls:
        out["ssl_context"] = ssl_context(security)
    return out


def ssl_context(security: KafkaSecurity) -> ssl.SSLContext:
    """A client TLS context: the brokers' certificates checked against `cafile` (else the
    system's CAs) and their names checked unless `check_hostname` is off; the client's own
    certificate and key for mutual TLS when given."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=security.cafile)
    context.check_hostname = security.check_hostname
    if security.certfile is not None:
        context.load_cert_chain(certfile=security.certfile, keyfile=security.keyfile)
    return context


class KafkaSecuritySettings(BaseSettings):
    """Mixin of the Kafka security settings; the inheriting class's env prefix applies."""

    kafka_security_protocol: SecurityProtocol = Field(
        default=SecurityProtocol.PLAINTEXT,
        description="Kafka security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
    )
    kafka_sasl_mechanism: SaslMechanism = Field(
        default=SaslMechanism.PLAIN,
        description="SASL mechanism with SASL_*: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user name (required with SASL_*)"
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password (or KAFKA_SASL_PASSWORD_FILE)"
    )
    kafka_sasl_password_file: str | None = Field(
        default=None,
        description="file holding the SASL password (a mounted Secret; one trailing newline "
        "is dropped); instead of KAFKA_SASL_PASSWORD",
    )
    kafka_ssl_cafile: str | None = Field(
        default=None,
        description="PEM CA bundle the brokers' certificates are checked against, with SSL or "
        "SASL_SSL; unset = the system's CAs",
    )
    kafka_ssl_certfile: str | None = Field(
        default=None, description="PEM client certificate for mutual TLS (with SSL/SASL_SSL)"
    )
    kafka_ssl_keyfile: str | None = Field(
        default=None,
        description="PEM private key (unencrypted) of KAFKA_SSL_CERTFILE; unset = in the "
        "certificate file",
    )
    kafka_ssl_check_hostname: bool = Field(
        default=True, description="check the brokers' certificate names against their hosts"
    )

    @field_validator(
        "kafka_sasl_username",
        "kafka_sasl_password_file",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: Any) -> Any:
        """An empty variable (a ConfigMap key left blank) means unset."""
        return None if isinstance(value, str) and not value.strip() else value

    @model_validator(mode="after")
    def _kafka_security_consistent(self) -> Self:
        problems = kafka_security_problems(self, env_prefix=_env_prefix(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def kafka_security(self) -> KafkaSecurity:
        """The resolved security settings (reads KAFKA_SASL_PASSWORD_FILE); KafkaSecurityError
        names every configured file that does not exist."""
        p = _env_prefix(self).upper()
        files = {
            "KAFKA_SSL_CAFILE": self.kafka_ssl_cafile,
            "KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile,
            "KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile,
            "KAFKA_SASL_PASSWORD_FILE": self.kafka_sasl_password_file,
        }
        missing = [
            f"{p}{name}: no such file: {path}"
            for name, path in files.items()
            if path is not None and not Path(path).is_file()
        ]
        if missing:
            raise KafkaSecurityError("; ".join(missing))
        password: str | None = None
        if self.kafka_sasl_password is not None:
            password = self.kafka_sasl_password.get_secret_value()
        elif self.kafka_sasl_password_file is not None:
            password = _read_password(Path(self.kafka_sasl_password_file))
        return KafkaSecurity(
            protocol=self.kafka_security_protocol,
            mechanism=self.kafka_sasl_mechanism,
            username=self.kafka_sasl_username,
            password=password,
            cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile,
            keyfile=self.kafka_ssl_keyfile,
            check_hostname=self.kafka_ssl_check_hostname,
        )


def kafka_security_problems(settings: KafkaSecuritySettings, *, env_prefix: str) -> list[str]:
    """What is inconsistent in `settings`, each naming its environment variable (empty: fine).
    Pure: whether the files exist is checked by `kafka_security()`, when a client is built."""
    p = env_prefix.upper()
    protocol = settings.kafka_security_protocol
    has_password = settings.kafka_sasl_password is not None
    has_password_file = settings.kafka_sasl_password_file is not None
    problems: list[str] = []
    if protocol.sasl:
        if not settings.kafka_sasl_username:
            problems.append(f"{p}KAFKA_SASL_USERNAME is required with {protocol.value}")
        if not has_password and not has_password_file:
            problems.append(
                f"{p}KAFKA_SASL_PASSWORD or {p}KAFKA_SASL_PASSWORD_FILE is required with "
                f"{protocol.value}"
            )
    elif settings.kafka_sasl_username or has_password or has_password_file:
        problems.append(
            f"SASL credentials are set but {p}KAFKA_SECURITY_PROTOCOL is {protocol.value}: "
            "use SASL_SSL (or SASL_PLAINTEXT)"
        )
    if has_password and has_password_file:
        problems.append(f"set {p}KAFKA_SASL_PASSWORD or {p}KAFKA_SASL_PASSWORD_FILE, not both")
    tls_files = {
        "KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    if not protocol.tls and any(v is not None for v in tls_files.values()):
        problems.append(
            f"TLS files are set but {p}KAFKA_SECURITY_PROTOCOL is {protocol.value}: "
            "use SSL or SASL_SSL"
        )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        problems.append(f"{p}KAFKA_SSL_KEYFILE needs {p}KAFKA_SSL_CERTFILE")
    return problems


def _env_prefix(settings: BaseSettings) -> str:
    return str(type(settings).model_config.get("env_prefix") or "")


def _read_password(path: Path) -> str:
    text = path.read_text()
    return text[:-2] if text.endswith("\r\n") else text.removesuffix("\n")
