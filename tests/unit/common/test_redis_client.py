"""ripple_common.redis_client: URL forms, clear errors, and which client each URL builds (no
network: redis-py clients connect lazily)."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from redis.asyncio.sentinel import SentinelConnectionPool

from ripple_common.redis_client import (
    CLUSTER_MIN_CONNECTIONS_PER_NODE,
    RedisTarget,
    RedisUrlError,
    RippleRedisCluster,
    ScriptLoadingPipeline,
    SlotTransaction,
    _first_key,
    is_cluster,
    parse_redis_url,
    redis_client,
)


def test_single_node_urls_stay_redis_py_urls() -> None:
    for url in ("redis://127.0.0.1:16379/0", "rediss://h:6380", "unix:///tmp/r.sock?db=1"):
        target = parse_redis_url(url)
        assert target.kind == "single"
        assert target.url == url
    assert parse_redis_url("rediss://h:1").tls


def test_cluster_url() -> None:
    target = parse_redis_url("redis+cluster://u:p%40ss@127.0.0.1:17001,[::1]:17002,host:17003")
    assert target == RedisTarget(
        kind="cluster",
        url="redis+cluster://u:p%40ss@127.0.0.1:17001,[::1]:17002,host:17003",
        nodes=(("127.0.0.1", 17001), ("::1", 17002), ("host", 17003)),
        username="u",
        password="p@ss",
    )
    assert parse_redis_url("rediss+cluster://h:1/0").tls


def test_sentinel_url() -> None:
    target = parse_redis_url("redis+sentinel://:secret@s1:26379,s2:26379/mymaster/2")
    assert target.kind == "sentinel"
    assert target.nodes == (("s1", 26379), ("s2", 26379))
    assert (target.master, target.db, target.username, target.password) == (
        "mymaster",
        2,
        None,
        "secret",
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("127.0.0.1:6379", "no scheme"),
        ("http://h:1", "unknown Redis URL scheme"),
        ("redis+shard://h:1", "unknown Redis URL scheme"),
        ("redis+cluster://h", "not host:port"),
        ("redis+cluster://h:0", "not host:port"),
        ("redis+cluster://h:1,", "not host:port"),
        ("redis+cluster://h:1/3", "database 0 only"),
        ("redis+cluster://h:1?ssl=true", "no query"),
        ("redis+sentinel://h:1", "names the master"),
        ("redis+sentinel://h:1/m/x", "not a number"),
    ],
)
def test_bad_urls_are_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match=message):
        parse_redis_url(url)


def test_errors_never_show_the_password() -> None:
    with pytest.raises(RedisUrlError) as info:
        parse_redis_url("redis+cluster://u:topsecret@h")
    assert "topsecret" not in str(info.value)
    assert "u:***@h" in str(info.value)


async def test_single_node_with_a_cap_keeps_the_blocking_pool() -> None:
    client = redis_client("redis://127.0.0.1:1/0", max_connections=7, pool_timeout_s=3.0)
    pool = client.connection_pool
    assert isinstance(pool, aioredis.BlockingConnectionPool)
    assert pool.max_connections == 7
    assert pool.timeout == 3.0
    assert not is_cluster(client)
    await client.aclose()


async def test_cluster_url_builds_the_script_loading_cluster_client() -> None:
    client: object = redis_client("redis+cluster://127.0.0.1:1,127.0.0.1:2", max_connections=5)
    assert isinstance(client, RippleRedisCluster)
    assert is_cluster(client)
    nodes = sorted((n.host, n.port) for n in client.nodes_manager.startup_nodes.values())
    assert nodes == [("127.0.0.1", 1), ("127.0.0.1", 2)]
    # redis-py's cluster client fails past its cap instead of waiting: never below default.
    assert {n.max_connections for n in client.nodes_manager.startup_nodes.values()} == {
        CLUSTER_MIN_CONNECTIONS_PER_NODE
    }
    assert isinstance(client.pipeline(transaction=False), ScriptLoadingPipeline)
    assert isinstance(client.pipeline(transaction=True), SlotTransaction)
    await client.aclose()


async def test_sentinel_url_builds_a_master_client() -> None:
    client = redis_client("redis+sentinel://127.0.0.1:1/mymaster/1", max_connections=4)
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.max_connections == 4
    assert pool.connection_kwargs["db"] == 1
    await client.aclose()


def test_first_key_of_a_transaction_command() -> None:
    assert _first_key(("HSET", "k", "f", "v")) == "k"
    assert _first_key(("XINFO STREAM", "s")) == "s"
    assert _first_key(("XREAD", "COUNT", 5, b"STREAMS", "s", "0-0")) == "s"
    assert _first_key(("EVALSHA", "abc", 2, "k1", "k2", "arg")) == "k1"
