"""The topic limit at start, against a fake admin client: raised when lower (keeping the other
overrides), kept when it may not be raised, None (the configured limit) when unreadable."""

from __future__ import annotations

import base64
import os
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from ripple_watcher import kafka
from ripple_watcher.settings import WatcherSettings


class Described:
    def __init__(self, entries: dict[str, tuple[str, int]]) -> None:
        self._entries = entries

    def to_object(self) -> dict[str, Any]:
        return {
            "resources": [
                {
                    "error_code": 0,
                    "resource_name": "t",
                    "config_entries": [
                        {"config_names": k, "config_value": v, "config_source": source}
                        for k, (v, source) in self._entries.items()
                    ],
                }
            ]
        }


class FakeAdmin:
    configs: ClassVar[dict[str, tuple[str, int]]] = {}
    altered: ClassVar[list[dict[str, str]]] = []
    alter_fails = False
    describe_fails = False

    def __init__(self, **_: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_configs(self, resources: list[Any]) -> list[Described]:
        if FakeAdmin.describe_fails:
            raise RuntimeError("TOPIC_AUTHORIZATION_FAILED")
        return [Described(FakeAdmin.configs)]

    async def alter_configs(self, resources: list[Any]) -> list[Described]:
        if FakeAdmin.alter_fails:
            raise RuntimeError("CLUSTER_AUTHORIZATION_FAILED")
        (resource,) = resources
        FakeAdmin.altered.append(dict(resource.configs))
        FakeAdmin.configs = {k: (v, 1) for k, v in resource.configs.items()}
        return [Described({})]


class FakeProducer:
    async def partitions_for(self, topic: str) -> set[int]:
        return {0}


@pytest.fixture(autouse=True)
def fake_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeAdmin.configs = {
        "max.message.bytes": ("1048588", 5),  # the broker's default
        "retention.ms": ("3600000", 1),  # the topic's own override
        "cleanup.policy": ("delete", 5),
    }
    FakeAdmin.altered = []
    FakeAdmin.alter_fails = FakeAdmin.describe_fails = False
    monkeypatch.setattr(kafka, "AIOKafkaAdminClient", FakeAdmin)


def settings(**kw: Any) -> WatcherSettings:
    return WatcherSettings(sealing_key=SecretStr(base64.b64encode(os.urandom(32)).decode()), **kw)


async def test_a_lower_limit_is_raised_keeping_the_topics_other_overrides() -> None:
    assert await kafka.topic_message_limit(settings(), FakeProducer()) == 2 * 1024 * 1024
    assert FakeAdmin.altered == [{"retention.ms": "3600000", "max.message.bytes": "2097152"}]


async def test_without_permission_to_raise_it_the_topics_limit_applies() -> None:
    FakeAdmin.alter_fails = True
    limit = await kafka.message_limit(settings(), FakeProducer())
    assert limit.max_message_bytes == 1_048_588


async def test_configure_off_only_reads_it() -> None:
    limit = await kafka.message_limit(settings(kafka_configure_topic=False), FakeProducer())
    assert limit.max_message_bytes == 1_048_588
    assert FakeAdmin.altered == []


async def test_unreadable_means_the_configured_limit() -> None:
    FakeAdmin.describe_fails = True
    limit = await kafka.message_limit(settings(kafka_max_message_bytes=900_000), FakeProducer())
    assert limit.max_message_bytes == 900_000
