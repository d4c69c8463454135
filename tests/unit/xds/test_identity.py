from __future__ import annotations

import pytest

from ripple_xds.identity import MAX_NODE_ID, IdentityError, NodeIdentity, identify


def test_a_node_with_an_id_is_identified() -> None:
    assert identify(has_node=True, node_id="gw-1", cluster="edge") == NodeIdentity("gw-1", "edge")


@pytest.mark.parametrize(
    ("has_node", "node_id", "message"),
    [
        (False, "", "must carry node.id"),
        (True, "", "node.id is empty"),
        (True, "   ", "node.id is empty"),
        (True, "gw\n1", "printable"),
        (True, "x" * (MAX_NODE_ID + 1), "printable"),
    ],
)
def test_a_node_without_a_usable_id_is_refused_with_a_clear_message(
    has_node: bool, node_id: str, message: str
) -> None:
    with pytest.raises(IdentityError, match=message):
        identify(has_node=has_node, node_id=node_id)
