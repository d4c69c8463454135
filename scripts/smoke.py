"""Smoke check of the local stack: every component answers a real request from Python.

Run by `./dev up` (as `python -m scripts.smoke`) once the stack is ready; exits non-zero
naming the component that failed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from kubernetes_asyncio import client, config

from scripts.stack_env import load_stack_env, stack_env_file


def load_env() -> dict[str, str]:
    env = load_stack_env()
    if not env:
        sys.exit(f"smoke: {stack_env_file()} not found; start the stack with `stack/stack up`")
    return env


async def check_kafka(env: dict[str, str]) -> str:
    topic = "ripple.smoke"
    token = uuid.uuid4().hex.encode()
    producer = AIOKafkaProducer(bootstrap_servers=env["RIPPLE_KAFKA_BOOTSTRAP"], acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, key=b"smoke", value=token)
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=env["RIPPLE_KAFKA_BOOTSTRAP"])
    await consumer.start()
    try:
        tp = TopicPartition(topic, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        batch = await consumer.getmany(tp, timeout_ms=10_000)
        values = [r.value for r in batch.get(tp, [])]
    finally:
        await consumer.stop()
    if token not in values:
        raise RuntimeError("produced record not read back")
    return f"produced and read back offset {meta.offset} of {topic}[{meta.partition}]"


async def check_redis(env: dict[str, str]) -> str:
    r = aioredis.from_url(env["RIPPLE_REDIS_URL"])
    try:
        await r.set("ripple:smoke", "ok", ex=60)
        if await r.get("ripple:smoke") != b"ok":
            raise RuntimeError("value not read back")
        info = await r.info("server")
    finally:
        await r.aclose()
    return f"redis {info['redis_version']} round trip"


async def check_apiserver(env: dict[str, str]) -> str:
    api = await config.new_client_from_config(config_file=env["KUBECONFIG"])
    try:
        version = await client.VersionApi(api).get_code()
        groups = await client.ApisApi(api).get_api_versions()
        names = {g.name for g in groups.groups}
        for needed in ("networking.k8s.io", "discovery.k8s.io", "coordination.k8s.io"):
            if needed not in names:
                raise RuntimeError(f"API group {needed} not served")
        await client.NetworkingV1Api(api).list_ingress_for_all_namespaces(limit=1)
    finally:
        await api.close()
    return f"kube-apiserver {version.git_version}, Ingress and EndpointSlice APIs served"


def _http_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.load(resp)


async def check_jaeger(env: dict[str, str]) -> str:
    data = await asyncio.to_thread(_http_json, f"{env['RIPPLE_JAEGER_QUERY_URL']}/api/services")
    if not isinstance(data, dict) or "data" not in data:
        raise RuntimeError(f"unexpected /api/services answer: {data!r}")
    return f"query API answers; OTLP at {env['RIPPLE_OTLP_ENDPOINT']}"


async def check_envoy(env: dict[str, str]) -> str:
    info = await asyncio.to_thread(_http_json, f"{env['RIPPLE_ENVOY_ADMIN_URL']}/server_info")
    if not isinstance(info, dict):
        raise RuntimeError("unexpected /server_info answer")
    return f"gateway envoy {info.get('version', '?').split('/')[1]} state {info.get('state')}"


CHECKS: dict[str, Callable[[dict[str, str]], Awaitable[str]]] = {
    "kafka": check_kafka,
    "redis": check_redis,
    "apiserver": check_apiserver,
    "jaeger": check_jaeger,
    "envoy": check_envoy,
}


async def main() -> int:
    env = load_env()
    failed = 0
    for name, check in CHECKS.items():
        t0 = time.perf_counter()
        try:
            detail = await asyncio.wait_for(check(env), timeout=30)
            status = "ok"
        except Exception as exc:
            detail, status = f"{type(exc).__name__}: {exc}", "FAIL"
            failed += 1
        print(f"smoke {status:4} {name:10} {(time.perf_counter() - t0) * 1000:7.0f} ms  {detail}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
