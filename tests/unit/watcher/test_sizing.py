"""MessageLimit: what fits in one message of the events topic, compressed or not."""

from __future__ import annotations

import os
import zlib

import pytest

from ripple_watcher.kafka import compressor
from ripple_watcher.settings import Compression
from ripple_watcher.sizing import MessageLimit

KIB = 1024


def _limit(max_bytes: int = 64 * KIB, **kw: object) -> MessageLimit:
    return MessageLimit(
        max_message_bytes=max_bytes,
        max_uncompressed_bytes=kw.pop("max_uncompressed", 1024 * KIB),  # type: ignore[arg-type]
        compress=kw.pop("compress", zlib.compress),  # type: ignore[arg-type]
        overhead_bytes=1 * KIB,
    )


def test_small_values_fit_without_being_compressed() -> None:
    calls: list[int] = []

    def counting(value: bytes) -> bytes:
        calls.append(len(value))
        return value

    limit = _limit(compress=counting)
    assert limit.oversize(b"x" * (63 * KIB)) is None
    assert calls == []


def test_compressible_values_above_the_limit_fit_compressed() -> None:
    limit = _limit()
    assert limit.oversize(b"path: /a/b/c\n" * 20_000) is None  # 260 KB raw


def test_incompressible_values_above_the_limit_do_not_fit_and_say_their_size() -> None:
    value = os.urandom(100 * KIB)
    size = _limit().oversize(value)
    assert size is not None
    assert size >= 100 * KIB  # compressed random data is no smaller
    assert _limit(compress=None).oversize(value) == 100 * KIB


def test_above_the_producers_request_size_nothing_fits_however_it_compresses() -> None:
    limit = _limit(max_uncompressed=200 * KIB)
    assert limit.oversize(b"a" * (300 * KIB)) is not None


def test_a_refused_size_no_longer_fits_after_lowering() -> None:
    limit = _limit()
    value = b"x" * (40 * KIB)
    assert limit.oversize(value) is None
    lowered = limit.lowered(limit.measure(value))
    assert lowered.max_message_bytes < limit.max_message_bytes
    assert lowered.oversize(os.urandom(40 * KIB)) is not None
    assert lowered.lowered(10**9) == lowered  # never raised


def test_the_overhead_must_leave_room() -> None:
    with pytest.raises(ValueError, match="larger than the overhead"):
        _limit(max_bytes=KIB)


@pytest.mark.parametrize("codec", [Compression.ZSTD, Compression.LZ4, Compression.GZIP])
def test_the_producers_codecs_measure_what_kafka_gets(codec: Compression) -> None:
    compress = compressor(codec)
    assert compress is not None
    text = b'{"path":"/api/v1/items","pathType":"Prefix"},' * 10_000
    assert len(compress(text)) < len(text) // 10
    assert compressor(Compression.NONE) is None
