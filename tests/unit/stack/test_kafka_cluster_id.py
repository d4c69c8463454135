"""The stack's Kafka cluster ids (stack/components/kafka.sh `kafka_new_cluster_id`): Kafka's
Uuid text form, and never one starting with "-". One did (1 in 64 draws) in a clean-clone
`.ci/run`: kafka-storage's argument parser took it for an option ("argument --cluster-id/-t:
expected one argument") and the stack did not start."""

from __future__ import annotations

import base64
import subprocess

from scripts.stack_env import REPO_DIR

DRAWS = 1000  # without the rule, P(none starts with "-") = (63/64) ** 1000, about 1.5e-7


def test_cluster_ids_are_kafka_uuids_never_starting_with_a_dash() -> None:
    script = (
        "source stack/lib.sh && source stack/components/kafka.sh && "
        f'for _ in $(seq {DRAWS}); do echo "$(kafka_new_cluster_id)"; done'
    )
    out = subprocess.run(
        ["bash", "-c", script], cwd=REPO_DIR, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(out) == DRAWS
    assert [i for i in out if i.startswith("-")] == []
    for cluster_id in out[:50]:
        assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16
