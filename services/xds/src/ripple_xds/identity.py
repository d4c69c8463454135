"""Node identity: which Envoy is asking. Pure logic, no I/O.

Today's rule is minimal: the first request of every ADS stream must carry a `node` with a
non-empty `id` (Envoy sends it on the first message with `set_node_on_first_message_only`),
otherwise the stream is closed with INVALID_ARGUMENT and a message saying why. Every
identified node gets every tenant: choosing a gateway's tenants and listeners from the node
id or metadata is left for later (it is a filter in front of the snapshot cache)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_NODE_ID = 256


class IdentityError(ValueError):
    """A node that presents no usable identity; the message is sent to the client."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    node_id: str
    cluster: str = ""


def identify(*, has_node: bool, node_id: str, cluster: str = "") -> NodeIdentity:
    """The identity a stream's first request presents, or IdentityError."""
    if not has_node:
        raise IdentityError(
            "ripple-xds: the first request of a stream must carry node.id "
            "(set node.id in the Envoy bootstrap)"
        )
    if not node_id.strip():
        raise IdentityError("ripple-xds: node.id is empty (set node.id in the Envoy bootstrap)")
    if len(node_id) > MAX_NODE_ID or not node_id.isprintable():
        raise IdentityError(
            f"ripple-xds: node.id must be printable and at most {MAX_NODE_ID} characters"
        )
    return NodeIdentity(node_id=node_id, cluster=cluster)
