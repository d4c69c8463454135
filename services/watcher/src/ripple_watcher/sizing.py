"""Whether an envelope fits in one Kafka message (pure but for the compressor it is given).

The topic's `max.message.bytes` bounds a whole record batch as the broker stores it, that is
compressed when the producer compresses. An envelope larger than that cannot be published at
all: the broker would refuse it (MessageSizeTooLargeError) on every retry, and with it the
watch of its kind would stop for every tenant. So the publisher asks `MessageLimit.oversize`
first and publishes a TOO_LARGE marker instead of an envelope that does not fit.

Compressing costs CPU, so only envelopes whose raw size is above the budget are compressed to
be measured (the others fit whatever the codec does: zstd adds a few bytes at worst, within
the overhead kept).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ripple_common.kafka_sizes import MESSAGE_OVERHEAD_BYTES

Compressor = Callable[[bytes], bytes]


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageLimit:
    """The largest message the topic accepts, and how the producer compresses."""

    # The topic's max.message.bytes (a record batch, compressed).
    max_message_bytes: int
    # The producer's max_request_size: aiokafka refuses a record whose uncompressed size is
    # above it before compressing.
    max_uncompressed_bytes: int
    # The producer's codec, to measure what the broker will get; None = no compression.
    compress: Compressor | None = None
    overhead_bytes: int = MESSAGE_OVERHEAD_BYTES

    def __post_init__(self) -> None:
        if self.max_message_bytes <= self.overhead_bytes:
            raise ValueError(
                f"max_message_bytes ({self.max_message_bytes}) must be larger than the "
                f"overhead kept for batch and record headers ({self.overhead_bytes})"
            )

    @property
    def budget(self) -> int:
        """What one envelope may take on the wire."""
        return self.max_message_bytes - self.overhead_bytes

    def measure(self, value: bytes) -> int:
        """`value`'s size as the broker would see it: its raw size when that fits anyway (an
        upper bound), else its compressed size."""
        raw = len(value)
        if self.compress is None or (
            raw <= self.budget and raw + self.overhead_bytes <= self.max_uncompressed_bytes
        ):
            return raw
        return len(self.compress(value))

    def fits(self, value: bytes, size: int) -> bool:
        """Whether `value`, of measured `size`, can be published."""
        return size <= self.budget and len(value) + self.overhead_bytes <= (
            self.max_uncompressed_bytes
        )

    def oversize(self, value: bytes) -> int | None:
        """None when `value` fits; else its size as the broker would see it (compressed)."""
        size = self.measure(value)
        return None if self.fits(value, size) else size

    def lowered(self, refused_size: int) -> MessageLimit:
        """The limit after the broker refused a message of measured `refused_size` as too
        large (the topic's limit is lower than configured): that size no longer fits, so the
        same object is published as a TOO_LARGE marker (or, compressed, retried smaller)
        next time instead of failing forever."""
        wanted = max(refused_size - 1 + self.overhead_bytes, self.overhead_bytes + 1)
        if wanted >= self.max_message_bytes:
            return self
        return replace(self, max_message_bytes=wanted)
