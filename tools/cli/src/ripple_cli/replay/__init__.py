"""`ripple replay`: debug a tenant's history from the Kafka event log (see docs/replay.md).

Modules: `select` (which records, decoding), `kafka` / `sources` (reading the topic or an
export file), `run` (offline re-translation with the translator's code), `diff` (readable
resources, secrets redacted), `compare` (against Redis), `export` (NDJSON files), `stored`
(the Redis read), `command` (the flow)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from ripple_cli.replay.command import Request, ServeOptions, environment, execute
from ripple_cli.replay.model import EXIT_ERROR, ReplayError, Window
from ripple_cli.replay.select import ObjectFilter, parse_time
from ripple_translator.settings import TranslatorSettings

EPILOG = """\
The translator's settings (RIPPLE_TRANSLATOR_KAFKA_BOOTSTRAP, _TOPIC, _REDIS_URL, _REDIS_PREFIX,
_CONTROLLERS, _EXTRA_CLASS_NAMES, _WATCH_WITHOUT_CLASS, _HOST_TENANT_DOMAIN, _HOST_ALLOWED,
_SEALING_KEY) are read from the environment, so the replay translates exactly as the
translator does. Exit codes: 0 done, 1 the replay diverged from Redis (--compare), 2 an error
(unknown tenant, time before retention, unreadable file, newer envelope schema, bad
arguments). See docs/replay.md."""


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "replay",
        help="replay tenants' history from the Kafka event log (or an export file)",
        description="Re-run the translation of tenants' events offline and print, per event, "
        "the resulting replay version and a diff of the Envoy resources it changed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("tenants", nargs="+", metavar="TENANT", help="tenant(s) to replay")
    source = parser.add_argument_group("source")
    source.add_argument("--from-file", type=Path, metavar="FILE", help="replay an export file")
    source.add_argument("--bootstrap", help="Kafka bootstrap servers (default: translator's)")
    source.add_argument("--topic", help="events topic (default: the translator's)")
    source.add_argument("--redis-url", help="Redis URL for --compare (default: translator's)")
    source.add_argument("--prefix", help="Redis key prefix (default: the translator's)")
    window = parser.add_argument_group("window (the state is always rebuilt from the log start)")
    window.add_argument("--since", metavar="TIME", help="print steps from TIME (ISO 8601/epoch ms)")
    window.add_argument("--until", metavar="TIME", help="stop after TIME")
    window.add_argument("--from-offset", type=int, metavar="N", help="print steps from offset N")
    window.add_argument("--to-offset", type=int, metavar="N", help="stop after offset N")
    window.add_argument(
        "--object",
        action="append",
        default=[],
        metavar="[KIND/][NS/]NAME",
        help="print only the events of this object (repeatable)",
    )
    mode = parser.add_argument_group("what to do").add_mutually_exclusive_group()
    mode.add_argument("--at", metavar="TIME", help="print the tenant's whole config at TIME")
    mode.add_argument("--explain", metavar="HOST", help="list the events that shaped HOST")
    mode.add_argument(
        "--compare",
        action="store_true",
        help="replay up to the offset of the tenant's stored version and compare with Redis "
        "(exit code 1 on any difference)",
    )
    mode.add_argument(
        "--export", metavar="FILE", help="write the history as NDJSON ('-': stdout), no replay"
    )
    mode.add_argument(
        "--serve",
        action="store_true",
        help="serve the replayed config (at --until/--to-offset, default the end) from a local "
        "xds server to a local Envoy, until Ctrl-C",
    )
    serving = parser.add_argument_group("--serve (everything on 127.0.0.1)")
    serving.add_argument("--xds-port", type=int, default=0, help="xds port (default: any free)")
    serving.add_argument("--listen-port", type=int, default=10080, help="Envoy's HTTP listener")
    serving.add_argument("--admin-port", type=int, default=19902, help="Envoy's admin port")
    serving.add_argument(
        "--envoy-bootstrap",
        type=Path,
        default=Path("ripple-replay-envoy.json"),
        metavar="FILE",
        help="where to write the Envoy bootstrap (default ./ripple-replay-envoy.json)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-event output")
    parser.add_argument(
        "--progress-every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="progress line on stderr at most this often (default 1)",
    )
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    # Library logs (e.g. the translator's warnings) go to stderr: stdout is the replay's.
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
    )
    try:
        request = build_request(args)
        try:
            settings = TranslatorSettings()
        except ValidationError as exc:
            raise ReplayError(f"the translator settings (RIPPLE_TRANSLATOR_*): {exc}") from None
        return execute(request, environment(settings, args), out=sys.stdout, err=sys.stderr)
    except ReplayError as exc:
        sys.stderr.write(f"ripple replay: error: {exc}\n")
        return EXIT_ERROR


def build_request(args: argparse.Namespace) -> Request:
    if args.compare and (args.until or args.to_offset is not None):
        raise ReplayError("--compare replays up to the stored offset: no --until/--to-offset")
    if args.export and args.from_file:
        raise ReplayError("--export reads Kafka: not with --from-file")
    return Request(
        tenants=tuple(dict.fromkeys(args.tenants)),
        window=Window(
            from_offset=args.from_offset,
            to_offset=args.to_offset,
            since_ms=None if args.since is None else parse_time(args.since),
            until_ms=None if args.until is None else parse_time(args.until),
        ),
        objects=tuple(ObjectFilter.parse(o) for o in args.object),
        source_file=args.from_file,
        export_to=args.export,
        at_ms=None if args.at is None else parse_time(args.at),
        explain=args.explain,
        compare=args.compare,
        quiet=args.quiet,
        progress_every_s=args.progress_every,
        serve=ServeOptions(
            xds_port=args.xds_port,
            listen_port=args.listen_port,
            admin_port=args.admin_port,
            bootstrap=args.envoy_bootstrap,
        )
        if args.serve
        else None,
    )
