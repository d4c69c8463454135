"""The replay's pure pieces: export lines (written and hand-edited), record selection, the
comparison, secret redaction, the host view, progress."""

from __future__ import annotations

import base64
import io
import json

from envoy.extensions.transport_sockets.tls.v3 import secret_pb2

from ripple_cli.replay import diff, export
from ripple_cli.replay.compare import compare
from ripple_cli.replay.kafka import partition_for
from ripple_cli.replay.model import LogRecord, Window
from ripple_cli.replay.progress import Progress
from ripple_cli.replay.run import Change, PartitionReplay
from ripple_cli.replay.select import wanted
from ripple_common.resources import Resource, TypeUrl
from ripple_common.sealing import Sealer, resource_context
from ripple_translator.translate import TranslateOptions
from ripple_xds.secrets import SecretOpener
from tests.unit.translator_service.support import cluster, event, ingress, ingress_class, service
from tests.unit.xds import certs

# A real pair: the translator and the xds server check that they parse and match.
_PAIR = certs.self_signed("web.a.test")
KEY_PEM = _PAIR.private_key
CERT_PEM = _PAIR.certificate


def rec(offset: int, key: bytes | None, value: bytes = b"{}", ts: int = 0) -> LogRecord:
    return LogRecord(topic="t", partition=0, offset=offset, timestamp_ms=ts, key=key, value=value)


def test_export_line_round_trip_and_hand_edited_lines() -> None:
    envelope = event("a", service("a"))
    record = rec(7, b"a", envelope.to_bytes(), ts=99)
    line = export.encode_line(record)
    assert line is not None
    assert export.decode_line(line, where="x") == record
    # A line edited by hand (keys reordered, spaces) still reads.
    doc = json.loads(line)
    edited = json.dumps({k: doc[k] for k in sorted(doc, reverse=True)}, indent=None)
    again = export.decode_line(edited, where="x")
    assert again.offset == 7
    assert json.loads(again.value) == json.loads(record.value)
    assert export.encode_line(rec(1, b"a", b"not json")) is None


def test_selection_by_key_and_window() -> None:
    tenants = frozenset({"a"})
    assert wanted(rec(0, b"a"), tenants)
    assert wanted(rec(0, b"_cluster"), tenants)
    assert not wanted(rec(0, b"b"), tenants)
    window = Window(from_offset=5, to_offset=9, since_ms=100)
    assert window.shows(rec(5, None, ts=100))
    assert not window.shows(rec(4, None, ts=100))
    assert not window.shows(rec(6, None, ts=99))
    assert window.past(rec(10, None, ts=100))


def test_partition_for_is_kafkas_murmur2() -> None:
    # Known values of the Java client's default partitioner (murmur2, positive, modulo).
    assert partition_for("alpha", [0, 1]) != partition_for("tenant-a", [0, 1])
    assert partition_for("x", [0]) == 0


def test_comparison_and_redaction() -> None:
    replay = PartitionReplay(["a"], options=TranslateOptions())
    replay.apply(cluster(ingress_class()), offset=0)
    replay.apply(event("a", service("a")), offset=1)
    replay.apply(event("a", ingress("a", "web", "web.a.test")), offset=2)
    ours = replay.resources("a")
    same = compare(ours, ours.values(), tenant="a", stored_version=3, offset=3)
    assert not same.diverged
    stored = [r for r in ours.values() if r.type_url is not TypeUrl.ROUTE]
    stored.append(Resource(TypeUrl.SECRET, "a/a/tls", b"-----BEGIN PRIVATE KEY-----"))
    result = compare(ours, stored, tenant="a", stored_version=3, offset=3)
    kinds = {(c.type_url, c.before is None, c.after is None) for c in result.differences}
    assert kinds == {(TypeUrl.ROUTE, True, False), (TypeUrl.SECRET, False, True)}
    text = "\n".join(line for c in result.differences for line in diff.change_lines(c))
    assert "PRIVATE KEY" not in text
    assert "removed sds a/a/tls (content redacted" in text
    assert "added rds a/routes" in text


def test_host_view_follows_one_host() -> None:
    replay = PartitionReplay(["a"], options=TranslateOptions())
    replay.apply(cluster(ingress_class()), offset=0)
    replay.apply(event("a", service("a")), offset=1)
    replay.apply(event("a", ingress("a", "web", "web.a.test")), offset=2)
    before = diff.host_view(replay.resources("a"), "web.a.test")
    assert any(k.startswith("srds ") for k in before)
    assert any(k.startswith("cds ") for k in before)
    replay.apply(event("a", ingress("a", "api", "api.a.test")), offset=3)
    assert diff.host_view(replay.resources("a"), "web.a.test") == before
    assert diff.host_view(replay.resources("a"), "nowhere.test") == {}


def test_change_lines_show_a_unified_diff() -> None:
    body = Resource(TypeUrl.SCOPED_ROUTE, "a/scope/h", b"").body
    lines = diff.change_lines(Change(TypeUrl.SCOPED_ROUTE, "a/scope/h", None, body))
    assert lines[0] == "added srds a/scope/h"


def test_progress_is_throttled() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress(out, label="t/0", total=100, every_s=1.0, clock=lambda: now[0])
    progress.update(10)
    assert out.getvalue() == ""
    now[0] = 1.5
    progress.update(50)
    progress.finish(100)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("replay: t/0: 50/100 records (50%)")
    assert lines[1].startswith("replay: t/0: 100/100 records (100%)")


def test_sealed_stored_private_keys_compare_by_plaintext() -> None:
    key = Sealer(b"s" * 32)
    data = {
        "tls.crt": base64.b64encode(CERT_PEM).decode(),
        "tls.key": key.seal_value(KEY_PEM, context="a/tls/tls.key"),
    }
    secret = {
        "kind": "Secret",
        "metadata": {"name": "tls", "namespace": "a"},
        "type": "kubernetes.io/tls",
        "data": data,
    }
    tls_ingress = ingress("a", "web", "web.a.test")
    tls_ingress["spec"]["tls"] = [{"hosts": ["web.a.test"], "secretName": "tls"}]
    replay = PartitionReplay(["a"], options=TranslateOptions(), sealer=key)
    for offset, env in enumerate(
        [cluster(ingress_class()), event("a", service("a")), event("a", secret)]
    ):
        replay.apply(env, offset=offset)
    replay.apply(event("a", tls_ingress), offset=3)
    ours = replay.resources("a")
    secrets = [r for r in ours.values() if r.type_url is TypeUrl.SECRET]
    assert secrets
    assert all(b"PRIVATE KEY" not in r.body for r in secrets)  # sealed as the translator does
    # The same key sealed with a random nonce (another sealing of the same plaintext).
    stored = [_reseal_randomly(r, key) if r in secrets else r for r in ours.values()]
    assert compare(ours, stored, tenant="a", stored_version=1, offset=4).diverged
    opened = compare(
        ours, stored, tenant="a", stored_version=1, offset=4, normalize=SecretOpener(key)
    )
    assert not opened.diverged


def _reseal_randomly(resource: Resource, sealer: Sealer) -> Resource:
    opened = SecretOpener(sealer)(resource)
    assert opened is not None
    secret = secret_pb2.Secret.FromString(opened.body)
    key = secret.tls_certificate.private_key
    sealed = sealer.seal_value(key.inline_bytes, context=resource_context(resource.name))
    key.Clear()
    key.inline_string = sealed
    return Resource(resource.type_url, resource.name, secret.SerializeToString())
