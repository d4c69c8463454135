"""The one Redis client factory of every ripple service and tool: a single node, a Redis
Cluster or a Sentinel-managed master, chosen by the URL (docs/deploy.md "HA topology").

    redis://[user:password@]host:port[/db]        one node (redis-py's own URL, also rediss://
    rediss://...  unix://...                      for TLS and unix:// for a socket)
    redis+cluster://[user:password@]h1:p1,h2:p2,...
    rediss+cluster://...                          Redis Cluster: any reachable nodes are the
                                                  startup nodes; the client learns the rest
                                                  (database 0 only, as Redis Cluster)
    redis+sentinel://[user:password@]h1:p1,h2:p2,.../<master name>[/db]
    rediss+sentinel://...                         the master Sentinel names; the credentials
                                                  are the master's (Sentinels without auth)

ripple's keys are laid out for Redis Cluster: every script and MULTI touches one hash slot
(`{tenant}`, `{host}`, `{_p.<topic>.<n>}` tags; docs/redis-layout.md). What a cluster client
adds here: pipelines that call registered Lua scripts (EVALSHA) load them where a node answers
NOSCRIPT (a new master after a failover has an empty script cache) and run only those calls
again, as redis-py's single-node pipeline does with SCRIPT LOAD before it runs.

`parse_redis_url` is pure; `redis_client` builds the client; `RedisClient` is that client as
a service's lifecycle resource."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import unquote

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialWithJitterBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import (
    ClusterError,
    NoScriptError,
    RedisClusterException,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from ripple_common.backoff import Backoff

Kind = Literal["single", "cluster", "sentinel"]

# What a Redis outage or a cluster failover raises while it lasts (after the client's own
# retries): a loop that must outlive one (xds following the change stream) waits and goes on.
# CLUSTERDOWN and TRYAGAIN are server answers; a slot without a master is the client's error.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    ClusterError,
    TryAgainError,
    SlotNotCoveredError,
)

# redis-py's cluster client has no blocking pool: past its per-node cap a command fails
# (MaxConnectionsError) instead of waiting, so the cap is never set below its default.
CLUSTER_MIN_CONNECTIONS_PER_NODE = 100

# A failover (the cluster's node timeout, then the replica's election; a Sentinel's promotion)
# takes seconds: the cluster client retries a command on connection errors, re-reading the
# slot map, and the Sentinel master's client reconnecting, for about this long before it gives
# up (redis-py's own retry; `SlotTransaction` retries with `ripple_common.backoff`).
CLUSTER_RETRIES = 12
CLUSTER_BACKOFF_CAP_S = 1.0
CLUSTER_BACKOFF_BASE_S = 0.05


class RedisUrlError(ValueError):
    """A Redis URL that names no usable target."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """What a Redis URL names. `url` is the original (for single nodes and messages)."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()
    username: str | None = None
    password: str | None = None
    tls: bool = False
    db: int = 0
    master: str | None = None


def parse_redis_url(url: str) -> RedisTarget:
    """The target of `url` (see the module's docstring); RedisUrlError if it is malformed."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RedisUrlError(f"Redis URL {_redact(url)!r} has no scheme (redis://host:port)")
    scheme = scheme.lower()
    if scheme in ("redis", "rediss", "unix"):
        return RedisTarget(kind="single", url=url, tls=scheme == "rediss")
    base, plus, mode = scheme.partition("+")
    if not plus or base not in ("redis", "rediss") or mode not in ("cluster", "sentinel"):
        raise RedisUrlError(
            f"unknown Redis URL scheme {scheme!r} (redis, rediss, unix, redis+cluster, "
            "rediss+cluster, redis+sentinel, rediss+sentinel)"
        )
    if "?" in rest or "#" in rest:
        raise RedisUrlError(f"{scheme}:// URLs take no query or fragment: {_redact(url)!r}")
    userinfo, at, hostpart = rest.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    hosts, _, path = hostpart.partition("/")
    nodes = tuple(_node(n, url) for n in hosts.split(","))
    parts = [p for p in path.split("/") if p]
    if mode == "cluster":
        if parts and parts != ["0"]:
            raise RedisUrlError(f"Redis Cluster has database 0 only: {_redact(url)!r}")
        return RedisTarget(
            kind="cluster", url=url, nodes=nodes, username=username, password=password,
            tls=base == "rediss",
        )  # fmt: skip
    if not parts or len(parts) > 2:
        raise RedisUrlError(
            f"a Sentinel URL names the master: {scheme}://h1:p1,h2:p2/<master>[/db], "
            f"not {_redact(url)!r}"
        )
    db = 0
    if len(parts) == 2:
        if not parts[1].isdigit():
            raise RedisUrlError(f"database {parts[1]!r} is not a number in {_redact(url)!r}")
        db = int(parts[1])
    return RedisTarget(
        kind="sentinel", url=url, nodes=nodes, username=username, password=password,
        tls=base == "rediss", db=db, master=unquote(parts[0]),
    )  # fmt: skip


def _node(text: str, url: str) -> tuple[str, int]:
    host, colon, port = text.strip().rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise RedisUrlError(f"node {text!r} is not host:port in {_redact(url)!r}")
    return host.strip("[]"), int(port)


def _redact(url: str) -> str:
    """`url` without its password (for error messages)."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, hostpart = rest.rpartition("@")
    if not sep or not at or ":" not in userinfo:
        return url
    return f"{scheme}://{userinfo.partition(':')[0]}:***@{hostpart}"


def redis_client(
    url: str,
    *,
    decode_responses: bool = False,
    max_connections: int | None = None,
    pool_timeout_s: float | None = None,
) -> aioredis.Redis:
    """A redis-py asyncio client for `url`. A single node with `max_connections` gets a
    blocking pool (a caller finding no free connection waits up to `pool_timeout_s`); a
    cluster is a `RippleRedisCluster` (typed as `Redis`: it has the same command API), a
    Sentinel URL the master's client (it follows failovers)."""
    target = parse_redis_url(url)
    if target.kind == "single":
        if max_connections is None:
            return aioredis.from_url(url, decode_responses=decode_responses)
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=pool_timeout_s,
            decode_responses=decode_responses,
        )
        return aioredis.Redis.from_pool(pool)
    if target.kind == "cluster":
        cluster = RippleRedisCluster(
            startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
            username=target.username,
            password=target.password,
            ssl=target.tls,
            decode_responses=decode_responses,
            max_connections=max(max_connections or 0, CLUSTER_MIN_CONNECTIONS_PER_NODE),
            retry=Retry(
                ExponentialWithJitterBackoff(
                    cap=CLUSTER_BACKOFF_CAP_S, base=CLUSTER_BACKOFF_BASE_S
                ),
                CLUSTER_RETRIES,
            ),
        )
        return cast(aioredis.Redis, cluster)
    assert target.master is not None
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        list(target.nodes),
        username=target.username,
        password=target.password,
        ssl=target.tls,
        decode_responses=decode_responses,
    )
    extra: dict[str, Any] = {}
    if max_connections is not None:
        extra["max_connections"] = max_connections
    master: aioredis.Redis = sentinel.master_for(
        target.master,
        redis_class=aioredis.Redis,
        db=target.db,
        retry=Retry(
            ExponentialWithJitterBackoff(cap=CLUSTER_BACKOFF_CAP_S, base=CLUSTER_BACKOFF_BASE_S),
            CLUSTER_RETRIES,
        ),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        **extra,
    )
    return master


class RedisClient:
    """A redis-py client as a lifecycle resource (`ripple_common.lifecycle`): `start` pings,
    `stop` closes. Bytes, not decoded; a single node, a cluster or a Sentinel master by URL
    (`redis_client`). With `max_connections` a single node's pool holds at most that many and
    a caller finding none free waits for one (up to `pool_timeout_s`) instead of failing."""

    def __init__(
        self, url: str, *, max_connections: int | None = None, pool_timeout_s: float | None = None
    ) -> None:
        self.client: aioredis.Redis = redis_client(
            url, max_connections=max_connections, pool_timeout_s=pool_timeout_s
        )

    async def start(self) -> None:
        await self.client.ping()

    async def stop(self) -> None:
        await self.client.aclose()


def is_cluster(client: object) -> bool:
    """True when `client` is a Redis Cluster client (SCAN, FLUSH... go to every master)."""
    return isinstance(client, RedisCluster)


class RippleRedisCluster(RedisCluster):
    """redis-py's cluster client whose pipelines load registered scripts where needed.

    redis-py's single-node pipeline loads the scripts it will run (SCRIPT LOAD) before it runs
    them; its cluster pipeline does not, so an EVALSHA reaching a node that never saw the
    script, or a replica promoted by a failover (the script cache is not replicated), answers
    NOSCRIPT. Here those calls, and only those, run again after SCRIPT LOAD of every script
    registered on this client on every master; the pipeline's other commands are not
    repeated."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scripts: dict[str, AsyncScript] = {}
        self._node_clients: dict[tuple[str, int], aioredis.Redis] = {}
        self._tls = bool(kwargs.get("ssl", False))

    def register_script(self, script: Any) -> AsyncScript:  # type: ignore[override]
        registered = super().register_script(script)
        self._scripts[registered.sha] = registered
        return registered

    async def load_scripts(self) -> None:
        """SCRIPT LOAD of every registered script (redis-py sends it to every master)."""
        for script in self._scripts.values():
            await self.script_load(script.script)

    def pipeline(self, transaction: Any | None = None, shard_hint: Any | None = None) -> Any:
        if shard_hint:
            return super().pipeline(transaction, shard_hint)
        if transaction:
            return SlotTransaction(self)
        return ScriptLoadingPipeline(self)  # type: ignore[abstract]

    def node_client(self, host: str, port: int) -> aioredis.Redis:
        """A plain client of one node (same credentials, TLS and decoding), kept per node."""
        key = (host, port)
        client = self._node_clients.get(key)
        if client is None:
            kwargs = self.get_connection_kwargs()
            client = aioredis.Redis(
                host=host,
                port=port,
                username=kwargs.get("username"),
                password=kwargs.get("password"),
                ssl=self._tls,
                decode_responses=bool(kwargs.get("decode_responses", False)),
                socket_timeout=kwargs.get("socket_timeout"),
                socket_connect_timeout=kwargs.get("socket_connect_timeout"),
            )
            self._node_clients[key] = client
        return client

    async def aclose(self) -> None:
        clients, self._node_clients = list(self._node_clients.values()), {}
        for client in clients:
            await client.aclose()
        await super().aclose()


class ScriptLoadingPipeline(ClusterPipeline):
    """A non-transactional cluster pipeline that runs again, after loading the client's
    scripts, the EVALSHA calls a node answered with NOSCRIPT (see `RippleRedisCluster`)."""

    def __init__(self, client: RippleRedisCluster) -> None:
        super().__init__(client, None)
        self._ripple_client = client
        self._queued: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    async def initialize(self) -> ClusterPipeline:
        # redis-py empties the command queue here (`async with`, or awaiting the pipeline).
        self._queued = []
        return await super().initialize()

    def execute_command(self, *args: Any, **kwargs: Any) -> ClusterPipeline:
        self._queued.append((args, kwargs))
        return super().execute_command(*args, **kwargs)

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> ClusterPipeline:
        """Queue EVALSHA, awaitable as `AsyncScript(..., client=pipe)` calls it (redis-py's
        cluster pipeline refuses `evalsha`, and awaiting the pipeline itself would empty
        its queue)."""
        return self.execute_command("EVALSHA", sha, numkeys, *keys_and_args)

    async def execute(
        self, raise_on_error: bool = True, allow_redirections: bool = True
    ) -> list[Any]:
        queued, self._queued = self._queued, []
        replies = list(await super().execute(False, allow_redirections))
        again = [
            i
            for i, reply in enumerate(replies)
            if isinstance(reply, NoScriptError) and _is_evalsha(queued[i][0])
        ]
        if again:
            await self._ripple_client.load_scripts()
            retry = ClusterPipeline(self._ripple_client, None)  # type: ignore[abstract]
            for i in again:
                args, kwargs = queued[i]
                retry.execute_command(*args, **kwargs)
            for i, reply in zip(again, await retry.execute(False), strict=True):
                replies[i] = reply
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies


def _is_evalsha(args: Sequence[Any]) -> bool:
    return bool(args) and _word(args[0]) == "EVALSHA"


class SlotTransaction(aioredis.client.Pipeline):
    """MULTI/EXEC of commands on one hash slot of a cluster, run on that slot's master with a
    plain client. (redis-py 8.1's own cluster transactions run each queued command through
    `asyncio.run` in a thread to find its slot, which fails for commands whose keys it asks
    the server about, such as XREAD and XINFO.) A MOVED answer or a lost connection (a
    failover) re-reads the slot map and runs the transaction again: nothing of a MULTI that
    failed that way was applied."""

    def __init__(self, cluster: RippleRedisCluster) -> None:
        super().__init__(aioredis.ConnectionPool(), {}, True, None)
        self._cluster = cluster

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack, self.command_stack = self.command_stack, []
        if not stack:
            return []
        slots = {self._cluster.keyslot(_first_key(args)) for args, _ in stack}
        if len(slots) != 1:
            raise ValueError(f"a cluster transaction must stay in one hash slot, not {slots}")
        (slot,) = slots
        attempts = CLUSTER_RETRIES
        backoff = Backoff(
            initial=CLUSTER_BACKOFF_BASE_S * 2, maximum=CLUSTER_BACKOFF_CAP_S, jitter=False
        )
        await self._cluster.initialize()  # a new client learns the slot map first
        for attempt in range(1, attempts + 1):
            try:
                node = self._cluster.nodes_manager.get_node_from_slot(slot, False)
                client = self._cluster.node_client(node.host, int(node.port))
                async with client.pipeline(transaction=True) as pipe:
                    pipe.command_stack = list(stack)
                    return list(await pipe.execute(raise_on_error=raise_on_error))
            except (
                RedisConnectionError,
                RedisTimeoutError,
                ResponseError,
                RedisClusterException,
            ) as exc:
                topology = not isinstance(exc, ResponseError) or str(exc).startswith(
                    ("MOVED", "CLUSTERDOWN", "TRYAGAIN", "READONLY")
                )
                if attempt == attempts or not topology:
                    raise
                await asyncio.sleep(backoff.next())
                await self._cluster.nodes_manager.initialize()
        raise AssertionError("unreachable")


def _first_key(args: Sequence[Any]) -> Any:
    """The first key of a command's arguments (XREAD: after STREAMS; EVAL: after numkeys)."""
    words = [_word(a) for a in args]
    name = words[0]
    if name in ("XREAD", "XREADGROUP"):
        return args[words.index("STREAMS") + 1]
    if name in ("EVAL", "EVALSHA"):
        return args[3]
    return args[1]


def _word(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace").upper()
    return str(value).upper()
