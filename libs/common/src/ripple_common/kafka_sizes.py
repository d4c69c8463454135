"""How large one `ripple.events` message may be, for every Kafka client of ripple (pure).

Kubernetes stores objects of up to ~1.5 MiB (etcd's request limit), and the API accepts them;
Kafka's default message limit is 1 MiB. So the events topic is given `max.message.bytes` =
`MAX_MESSAGE_BYTES` (the watcher raises it on the topic at start, see
services/watcher/src/ripple_watcher/kafka.py, and docs/deploy.md for a topic managed by hand),
the watcher's producer compresses (zstd), and an envelope that still does not fit is replaced
by a TOO_LARGE marker (ripple_common.envelope). Consumers fetch at least one such message per
partition and request.
"""

from __future__ import annotations

from typing import Any, Final

# The topic's max.message.bytes ripple asks for: a compressed record batch up to 2 MiB.
MAX_MESSAGE_BYTES: Final = 2 * 1024 * 1024
# Room kept below the topic limit for the record batch header, the record framing, the key
# and the trace headers, when the watcher decides whether an envelope fits.
MESSAGE_OVERHEAD_BYTES: Final = 4096
# The producer's max_request_size: aiokafka checks it against the *uncompressed* record, so it
# is set well above any object the API accepts (the watcher checks the compressed size itself).
MAX_UNCOMPRESSED_BYTES: Final = 16 * 1024 * 1024
# Consumers: one partition's fetch takes at least one largest message (the broker returns a
# first batch larger than the limit anyway, since Kafka 0.10.1; this keeps it within one fetch).
PARTITION_FETCH_BYTES: Final = MAX_MESSAGE_BYTES + 1024 * 1024
FETCH_MAX_BYTES: Final = 64 * 1024 * 1024


def consumer_size_kwargs() -> dict[str, Any]:
    """aiokafka AIOKafkaConsumer keyword arguments: fetch sizes that take the largest message."""
    return {
        "max_partition_fetch_bytes": PARTITION_FETCH_BYTES,
        "fetch_max_bytes": FETCH_MAX_BYTES,
    }
