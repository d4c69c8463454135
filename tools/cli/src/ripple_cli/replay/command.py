"""`ripple replay`: the command's flow (I/O orchestration over the pure modules).

1. Pick the source (the events topic, or an export file) and each tenant's partition.
2. With --compare, read the tenants' stored snapshots first: each is replayed up to the Kafka
   offset its stored version covers.
3. Per partition, read from the first offset held (the state needs the whole history; the
   window only decides what is printed) to the stop offset, keep the records of the tenants
   and the cluster-scoped ones, and apply them (`run.PartitionReplay`).
4. Print steps / the config at --at / the host's history (--explain), export, or compare.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ripple_cli.replay import diff, export
from ripple_cli.replay.compare import Comparison, compare
from ripple_cli.replay.kafka import KafkaLog, partition_for
from ripple_cli.replay.model import EXIT_DIVERGED, EXIT_OK, LogRecord, ReplayError, Window
from ripple_cli.replay.progress import Progress
from ripple_cli.replay.run import PartitionReplay, Step
from ripple_cli.replay.select import ObjectFilter, any_matches, decode, format_time, wanted
from ripple_cli.replay.serve import serve
from ripple_cli.replay.sources import EventLog, FileLog
from ripple_cli.replay.stored import Stored, load_tenants
from ripple_common.kafka_security import PLAINTEXT, KafkaSecurity
from ripple_common.resources import Resource
from ripple_common.sealing import Sealer, SealingError
from ripple_common.store_contract import TenantState
from ripple_translator.app import writer_config
from ripple_translator.hosts import HostPolicy
from ripple_translator.settings import TranslatorSettings
from ripple_translator.translate import TranslateOptions
from ripple_xds.secrets import SecretOpener


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """What the operator asked for (parsed arguments)."""

    tenants: tuple[str, ...]
    window: Window
    objects: tuple[ObjectFilter, ...] = ()
    source_file: Path | None = None
    export_to: str | None = None
    at_ms: int | None = None
    explain: str | None = None
    compare: bool = False
    quiet: bool = False
    progress_every_s: float = 1.0
    serve: ServeOptions | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ServeOptions:
    xds_port: int
    listen_port: int
    admin_port: int
    bootstrap: Path


@dataclass(frozen=True, slots=True, kw_only=True)
class Environment:
    """Where to read from and how to translate: the translator's own settings
    (RIPPLE_TRANSLATOR_*), so the replay translates exactly as the translator does."""

    bootstrap: str
    topic: str
    redis_url: str
    prefix: str
    options: TranslateOptions
    sealer: Sealer | None
    host_policy: HostPolicy
    kafka_security: KafkaSecurity = PLAINTEXT  # RIPPLE_TRANSLATOR_KAFKA_SECURITY_PROTOCOL etc.


@dataclass(slots=True)
class _Plan:
    partition: int
    tenants: list[str]
    stop: int | None = None  # exclusive; None: the end of the partition
    # Per tenant: replay up to this offset (exclusive) for the comparison.
    compare_at: dict[str, int | None] = field(default_factory=dict)


def environment(settings: TranslatorSettings, args: argparse.Namespace) -> Environment:
    try:
        config = writer_config(settings)  # the translator's own options, key and host policy
    except SealingError as exc:
        raise ReplayError(f"RIPPLE_TRANSLATOR_SEALING_KEY: {exc}") from None
    return Environment(
        bootstrap=args.bootstrap or settings.kafka_bootstrap,
        topic=args.topic or settings.topic,
        redis_url=args.redis_url or settings.redis_url,
        prefix=args.prefix or settings.redis_prefix,
        options=config.options,
        sealer=config.sealer,
        host_policy=config.host_policy,
        kafka_security=settings.kafka_security(),
    )


def execute(request: Request, env: Environment, *, out: IO[str], err: IO[str]) -> int:
    return asyncio.run(_execute(request, env, out=out, err=err))


async def _execute(request: Request, env: Environment, *, out: IO[str], err: IO[str]) -> int:
    if env.sealer is None:
        err.write(
            "replay: no RIPPLE_TRANSLATOR_SEALING_KEY: sealed TLS keys stay closed (their "
            "Secrets translate as invalid, as in a translator without the key)\n"
        )
    if request.source_file is not None:
        log = FileLog.open(request.source_file)
        return await _replay(request, env, log, out=out, err=err)
    async with KafkaLog(
        bootstrap=env.bootstrap, topic=env.topic, security=env.kafka_security
    ) as kafka:
        return await _replay(request, env, kafka, out=out, err=err)


async def _replay(
    request: Request, env: Environment, log: EventLog, *, out: IO[str], err: IO[str]
) -> int:
    plans = await _plans(request, log)
    stored = Stored(states={}, withheld={})
    if request.compare:
        stored = await load_tenants(env.redis_url, prefix=env.prefix, tenants=request.tenants)
        _plan_comparison(plans, stored.states, log)
    export_out: IO[str] | None = None
    if request.export_to is not None:
        export_out = sys.stdout if request.export_to == "-" else _open_export(request.export_to)
    try:
        comparisons: list[Comparison] = []
        # Private keys compare by their plaintext, however they were sealed; the local Envoy
        # of --serve gets them opened, as the xds server serves them.
        opener = SecretOpener(env.sealer)
        served: list[Resource] = []
        exported = 0
        for plan in plans:
            begin, end = await log.bounds(plan.partition)
            if not request.compare:
                stop = end if plan.stop is None else min(plan.stop, end)
            elif (stop := end if plan.stop is None else plan.stop) > end:
                raise ReplayError(
                    f"{log.topic}/{plan.partition} ends at offset {end}, but the stored "
                    f"version covers offsets up to {stop}: an export older than Redis, or not "
                    "the translator's topic?"
                )
            if log.truncated(begin):
                await _check_window(request.window, log, plan.partition, begin=begin)
                err.write(
                    f"replay: {log.topic}/{plan.partition} starts at offset {begin}: older events "
                    "were deleted by retention; objects last changed before then are missing "
                    "unless a full re-list followed (see docs/replay.md)\n"
                )
            if export_out is not None:
                exported += await _export(log, plan, begin=begin, stop=stop, out=export_out)
                continue
            replay, snapshots = await _run(
                request, env, log, plan, stored, begin=begin, stop=stop, out=out, err=err
            )
            _check_known(replay, plan, log, begin=begin, stop=stop, stored=stored.states)
            if request.at_ms is not None:
                for tenant in plan.tenants:
                    out.write(f"# {tenant} at {format_time(request.at_ms)}\n")
                    out.writelines(
                        line + "\n" for line in diff.config_lines(replay.resources(tenant))
                    )
            elif request.serve is not None:
                for tenant in plan.tenants:
                    opened = (opener(r) for r in replay.resources(tenant).values())
                    served.extend(r for r in opened if r is not None)
            elif not request.quiet and request.explain is None:
                for tenant in plan.tenants:
                    out.write(
                        f"# {tenant}: {replay.events_of(tenant)} events, replay version "
                        f"{replay.version(tenant)}, {len(replay.resources(tenant))} resources\n"
                    )
            for tenant in plan.tenants if request.compare else ():
                state = stored.states[tenant]
                comparisons.append(
                    compare(
                        snapshots[tenant],
                        state.resources,
                        tenant=tenant,
                        stored_version=state.version,
                        offset=plan.compare_at.get(tenant),
                        normalize=opener,
                    )
                )
        if export_out is not None:
            err.write(f"replay: exported {exported} records\n")
    finally:
        if export_out is not None and export_out is not sys.stdout:
            export_out.close()
    if request.serve is not None:
        await serve(
            served,
            xds_port=request.serve.xds_port,
            listen_port=request.serve.listen_port,
            admin_port=request.serve.admin_port,
            bootstrap=request.serve.bootstrap,
            out=out,
        )
    return _report(comparisons, out=out)


def _open_export(path: str) -> IO[str]:
    try:
        return open(path, "w", encoding="utf-8")
    except OSError as exc:
        raise ReplayError(f"cannot write {path}: {exc.strerror or exc}") from None


async def _plans(request: Request, log: EventLog) -> list[_Plan]:
    partitions = await log.partitions()
    by_partition: dict[int, _Plan] = {}
    for tenant in request.tenants:
        if isinstance(log, FileLog):
            found = log.partition_of(tenant)
            if found is None:
                raise ReplayError(f"unknown tenant {tenant!r}: {log.name} holds no event of it")
            partition = found
        else:
            partition = partition_for(tenant, partitions)
        by_partition.setdefault(partition, _Plan(partition, [])).tenants.append(tenant)
    plans = [by_partition[p] for p in sorted(by_partition)]
    for plan in plans:
        window = request.window
        stops = []
        if window.to_offset is not None:
            stops.append(window.to_offset + 1)
        until = request.at_ms if request.at_ms is not None else window.until_ms
        if until is not None:
            after = await log.offset_after(plan.partition, until + 1)
            if after is not None:
                stops.append(after)
        plan.stop = min(stops) if stops else None
    return plans


def _plan_comparison(plans: list[_Plan], stored: Mapping[str, TenantState], log: EventLog) -> None:
    for plan in plans:
        for tenant in plan.tenants:
            state = stored[tenant]
            offset = state.offset
            if offset is None:
                plan.compare_at[tenant] = None
                continue
            if (offset.topic, offset.partition) != (log.topic, plan.partition) and not isinstance(
                log, FileLog
            ):
                raise ReplayError(
                    f"tenant {tenant!r} was stored from {offset.topic}/{offset.partition}, "
                    f"not {log.topic}/{plan.partition}"
                )
            plan.compare_at[tenant] = offset.offset
        known = [o for o in plan.compare_at.values() if o is not None]
        plan.stop = max(known) if len(known) == len(plan.tenants) else None


async def _check_window(window: Window, log: EventLog, partition: int, *, begin: int) -> None:
    """A --since before the oldest event retention kept cannot be honoured."""
    if window.since_ms is None:
        return
    async for first in log.read(partition, start=begin, stop=begin + 1):
        if window.since_ms < first.timestamp_ms:
            raise ReplayError(
                f"--since {format_time(window.since_ms)} is before the retention horizon of "
                f"{log.topic}/{partition}: its oldest event (offset {begin}) is from "
                f"{format_time(first.timestamp_ms)}; older events were deleted"
            )
        return


async def _export(log: EventLog, plan: _Plan, *, begin: int, stop: int, out: IO[str]) -> int:
    tenants = frozenset(plan.tenants)
    records: list[LogRecord] = []
    async for record in log.read(plan.partition, start=begin, stop=stop):
        if wanted(record, tenants):
            decode(record)  # a newer schema is refused here already
            records.append(record)
    return export.write(records, out)


async def _run(
    request: Request,
    env: Environment,
    log: EventLog,
    plan: _Plan,
    stored: Stored,
    *,
    begin: int,
    stop: int,
    out: IO[str],
    err: IO[str],
) -> tuple[PartitionReplay, dict[str, Any]]:
    printing = not request.quiet and request.at_ms is None and request.serve is None
    replay = PartitionReplay(
        plan.tenants,
        options=env.options,
        sealer=env.sealer,
        host_policy=env.host_policy,
        withheld=stored.withheld,
        each_step=printing,
    )
    tenants = frozenset(plan.tenants)
    progress = Progress(
        err,
        label=f"{log.topic}/{plan.partition}",
        total=max(stop - begin, 0),
        every_s=request.progress_every_s,
    )
    snapshots: dict[str, Any] = {}
    views: dict[str, dict[str, Any]] = {}
    read = 0
    started = False
    async for record in log.read(plan.partition, start=begin, stop=stop):
        read += 1
        progress.update(read)
        for tenant, at in plan.compare_at.items():
            if at is not None and tenant not in snapshots and record.offset >= at:
                snapshots[tenant] = replay.resources(tenant)
        if not wanted(record, tenants):
            continue
        envelope = decode(record)
        if envelope is None:
            err.write(f"replay: skipped a message that is no envelope at offset {record.offset}\n")
            continue
        shown = printing and request.window.shows(record)
        if shown and not started:
            started = True  # the window starts: state before it, translated once
            replay.catch_up()
            if request.explain is not None:
                views.update(
                    (t, diff.host_view(replay.resources(t), request.explain)) for t in plan.tenants
                )
        steps = replay.apply(
            envelope, offset=record.offset, timestamp_ms=record.timestamp_ms, translate=shown
        )
        if not shown:
            continue
        for step in steps:
            if request.explain is not None:
                _explain(step, replay, request.explain, views, out)
            elif any_matches(request.objects, step.envelope):
                _print_step(step, out)
    progress.finish(read)
    for tenant in plan.tenants:
        snapshots.setdefault(tenant, replay.resources(tenant))
    return replay, snapshots


def _check_known(
    replay: PartitionReplay,
    plan: _Plan,
    log: EventLog,
    *,
    begin: int,
    stop: int,
    stored: Mapping[str, TenantState],
) -> None:
    for tenant in plan.tenants:
        state = stored.get(tenant)
        if replay.events_of(tenant) == 0 and (state is None or state.version == 0):
            raise ReplayError(
                f"unknown tenant {tenant!r}: no event of it on {log.topic}/{plan.partition} "
                f"(offsets {begin}..{stop - 1}) and none stored in Redis"
            )


def step_header(step: Step) -> str:
    env = step.envelope
    what = f"{env.kind} {env.namespace}/{env.name}" if env.namespace else f"{env.kind} {env.name}"
    if env.tenant != step.tenant:
        what += f" ({env.tenant})"
    if not step.inputs_changed:
        result = "no change (same object)"
    elif step.error is not None:
        result = f"untranslatable: {step.error}"
    elif not step.changes:
        result = "no resource change"
    else:
        result = f"{len(step.changes)} resources changed"
    return (
        f"@{step.offset} {format_time(step.timestamp_ms)} {env.type.value} {what} "
        f"rv={env.resource_version} -> {step.tenant} v{step.version}: {result}"
    )


def _print_step(step: Step, out: IO[str]) -> None:
    out.write(step_header(step) + "\n")
    for change in step.changes:
        out.writelines(f"  {line}\n" for line in diff.change_lines(change))


def _explain(
    step: Step, replay: PartitionReplay, host: str, views: dict[str, dict[str, Any]], out: IO[str]
) -> None:
    before = views.get(step.tenant, {})
    after = diff.host_view(replay.resources(step.tenant), host)
    views[step.tenant] = after
    if after == before:
        return
    out.write(step_header(step) + "\n")
    out.writelines(f"  {line}\n" for line in diff.view_diff(before, after))


def _report(comparisons: list[Comparison], *, out: IO[str]) -> int:
    code = EXIT_OK
    for result in comparisons:
        where = "never written" if result.offset is None else f"offset {result.offset}"
        if not result.diverged:
            out.write(
                f"# compare {result.tenant}: identical to Redis (stored version "
                f"{result.stored_version}, {where})\n"
            )
            continue
        code = EXIT_DIVERGED
        out.write(
            f"# compare {result.tenant}: DIVERGED from Redis (stored version "
            f"{result.stored_version}, {where}): {len(result.differences)} resources differ "
            "(before = Redis, after = replay)\n"
        )
        for change in result.differences:
            out.writelines(f"  {line}\n" for line in diff.change_lines(change))
    return code
