"""Kafka security settings: env names per service, consistency errors, aiokafka kwargs."""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from ripple_common.kafka_security import (
    PLAINTEXT,
    KafkaSecurity,
    KafkaSecurityError,
    SaslMechanism,
    SecurityProtocol,
    client_kwargs,
    security_kwargs,
)
from ripple_translator.settings import TranslatorSettings
from ripple_watcher.settings import WatcherSettings

W = "RIPPLE_WATCHER_"


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A self-signed certificate (usable as CA and as client certificate) and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ripple test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = tmp_path / "cert.pem"
    key_path = tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    password = tmp_path / "password"
    password.write_text("s3cret\n")
    return {"cert": cert_path, "key": key_path, "password": password}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if "_KAFKA_S" in name and name.startswith("RIPPLE_"):
            monkeypatch.delenv(name)


def _env(monkeypatch: pytest.MonkeyPatch, prefix: str, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(prefix + key.upper(), value)


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return str(exc.value)


def test_default_is_plaintext() -> None:
    settings = WatcherSettings()
    assert settings.kafka_security() == PLAINTEXT
    assert client_kwargs(settings.kafka_security()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_ssl_scram_from_env_with_password_file(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    _env(
        monkeypatch,
        W,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ripple",
        kafka_sasl_password_file=str(pki["password"]),
        kafka_ssl_cafile=str(pki["cert"]),
    )
    security = WatcherSettings().kafka_security()
    assert security.protocol is SecurityProtocol.SASL_SSL
    assert security.password == "s3cret"  # the file's trailing newline is dropped
    assert "s3cret" not in repr(security)
    assert security_kwargs(security) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "ripple",
        "sasl_plain_password": "s3cret",
    }
    context = client_kwargs(security)["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    # Only the configured CA is trusted.
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "ripple test"),),)]


def test_translator_uses_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(
        monkeypatch,
        "RIPPLE_TRANSLATOR_",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_username="t",
        kafka_sasl_password="pw",
    )
    security = TranslatorSettings().kafka_security()
    assert security == KafkaSecurity(
        protocol=SecurityProtocol.SASL_PLAINTEXT,
        mechanism=SaslMechanism.PLAIN,
        username="t",
        password="pw",
    )
    assert "ssl_context" not in client_kwargs(security)  # no TLS: no context
    assert WatcherSettings().kafka_security() == PLAINTEXT


def test_mutual_tls_loads_the_client_certificate(
    monkeypatch: pytest.MonkeyPatch, pki: dict[str, Path]
) -> None:
    _env(
        monkeypatch,
        W,
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=str(pki["cert"]),
        kafka_ssl_keyfile=str(pki["key"]),
        kafka_ssl_check_hostname="false",
    )
    kwargs = client_kwargs(WatcherSettings().kafka_security())
    assert kwargs["security_protocol"] == "SSL"
    assert not kwargs["ssl_context"].check_hostname
    # A key that does not match the certificate fails when the context is built.
    other = ec.generate_private_key(ec.SECP256R1())
    pki["key"].write_bytes(
        other.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(ssl.SSLError):
        client_kwargs(WatcherSettings().kafka_security())


def test_missing_files_fail_when_the_client_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings load (a manifest check has no mounts); building the client names each
    missing file."""
    _env(
        monkeypatch,
        W,
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_username="u",
        kafka_sasl_password_file="/nonexistent/pw",
        kafka_ssl_cafile="/nonexistent/ca.crt",
    )
    settings = WatcherSettings()
    with pytest.raises(KafkaSecurityError) as exc:
        settings.kafka_security()
    assert str(exc.value) == (
        "RIPPLE_WATCHER_KAFKA_SSL_CAFILE: no such file: /nonexistent/ca.crt; "
        "RIPPLE_WATCHER_KAFKA_SASL_PASSWORD_FILE: no such file: /nonexistent/pw"
    )


def test_blank_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    _env(monkeypatch, W, kafka_ssl_cafile="", kafka_sasl_username=" ")
    assert WatcherSettings().kafka_security() == PLAINTEXT


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_password": "x"},
            "RIPPLE_WATCHER_KAFKA_SASL_USERNAME is required with SASL_SSL",
        ),
        (
            {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u"},
            "RIPPLE_WATCHER_KAFKA_SASL_PASSWORD or RIPPLE_WATCHER_KAFKA_SASL_PASSWORD_FILE is "
            "required with SASL_SSL",
        ),
        (
            {"kafka_sasl_username": "u", "kafka_sasl_password": "p"},
            "SASL credentials are set but RIPPLE_WATCHER_KAFKA_SECURITY_PROTOCOL is PLAINTEXT",
        ),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", "kafka_ssl_cafile": "{cert}"},
            "TLS files are set but RIPPLE_WATCHER_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT",
        ),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_keyfile": "{key}"},
            "RIPPLE_WATCHER_KAFKA_SSL_KEYFILE needs RIPPLE_WATCHER_KAFKA_SSL_CERTFILE",
        ),
        (
            {
                "kafka_security_protocol": "SASL_SSL",
                "kafka_sasl_username": "u",
                "kafka_sasl_password": "p",
                "kafka_sasl_password_file": "{password}",
            },
            "set RIPPLE_WATCHER_KAFKA_SASL_PASSWORD or RIPPLE_WATCHER_KAFKA_SASL_PASSWORD_FILE, "
            "not both",
        ),
        ({"kafka_security_protocol": "TLS"}, "kafka_security_protocol"),
        ({"kafka_sasl_mechanism": "GSSAPI"}, "kafka_sasl_mechanism"),
    ],
)
def test_inconsistent_settings_fail_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch,
    pki: dict[str, Path],
    values: dict[str, str],
    expected: str,
) -> None:
    files = {name: str(path) for name, path in pki.items()}
    _env(monkeypatch, W, **{k: v.format(**files) for k, v in values.items()})
    with pytest.raises(ValidationError) as exc:
        WatcherSettings()
    assert expected in _errors(exc)
