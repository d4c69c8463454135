"""The command line of every ripple service (`ripple-watcher`, `ripple-translator`,
`ripple-xds`): one argument parser and one `main`.

    ripple-<service> [--print-settings] [--help]

Configuration comes from the environment (the service's settings class and its prefix);
`--help` lists every setting with its variable, `--print-settings` prints the effective
settings as JSON (secrets masked) and exits. Invalid settings, or a `ServiceCommand.config_errors`
raised while starting, print one line and exit 2. Otherwise logging and tracing are set up,
`serve` runs under `ripple_common.lifecycle` until SIGTERM/SIGINT, and the tracer is flushed.

`ServiceCommand.serve` names the service's `serve` as `module:function`: the service's
adapters (kubernetes_asyncio, aiokafka, grpc) are imported only when it runs, so --help and
--print-settings stay fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar, cast

from pydantic import ValidationError

from ripple_common.lifecycle import Lifecycle, run
from ripple_common.logs import configure_logging
from ripple_common.settings import ServiceSettings
from ripple_common.telemetry import init_tracing

S = TypeVar("S", bound=ServiceSettings)
Serve = Callable[[Lifecycle, S], Awaitable[None]]

INVALID_SETTINGS_EXIT = 2


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceCommand(Generic[S]):
    """What distinguishes one service's command line from another's."""

    prog: str
    description: str
    settings: type[S]
    # `module:function` of the service's `serve(lc, settings)`.
    serve: str
    # Epilog paragraphs after the configuration line (e.g. the scope, the drain on SIGTERM).
    notes: Sequence[str] = ()
    # Raised by `serve` for settings that cannot work: one line on stderr, exit 2.
    config_errors: tuple[type[Exception], ...] = ()
    # False: `serve` sets up logging and tracing itself.
    telemetry: bool = True


def load_serve(command: ServiceCommand[S]) -> Serve[S]:
    """The service's `serve`, imported now."""
    module, _, name = command.serve.partition(":")
    return cast("Serve[S]", getattr(importlib.import_module(module), name))


def env_prefix(settings: type[ServiceSettings]) -> str:
    return str(settings.model_config.get("env_prefix", ""))


def settings_help(settings: type[ServiceSettings]) -> str:
    """One line per setting: its environment variable and what it does."""
    prefix = env_prefix(settings)
    lines = ["settings (environment variables):"]
    for name, field in settings.model_fields.items():
        lines.append(f"  {prefix}{name.upper()}: {field.description or ''}")
    return "\n".join(lines)


def build_parser(command: ServiceCommand[S]) -> argparse.ArgumentParser:
    epilog = [
        f"Configuration comes from environment variables prefixed {env_prefix(command.settings)} "
        "(see --print-settings).",
        *command.notes,
        settings_help(command.settings),
    ]
    parser = argparse.ArgumentParser(
        prog=command.prog,
        description=command.description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(epilog),
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the effective settings as JSON"
    )
    return parser


def main(command: ServiceCommand[S], argv: Sequence[str] | None = None) -> int:
    """Run the service's command line; the process exit code."""
    args = build_parser(command).parse_args(argv)
    try:
        settings = command.settings()
    except ValidationError as exc:
        print(f"{command.prog}: invalid settings: {exc}", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    if args.print_settings:
        print(settings.model_dump_json(indent=2))
        return 0
    serve = load_serve(command)

    async def _serve(lc: Lifecycle) -> None:
        await serve(lc, settings)

    provider = None
    if command.telemetry:
        configure_logging(service=command.prog, level=settings.log_level, json=settings.log_json)
        provider = init_tracing(service=command.prog, otlp_endpoint=settings.otlp_endpoint)
    try:
        run(_serve)
    except command.config_errors as exc:
        print(f"{command.prog}: {exc}", file=sys.stderr)
        return INVALID_SETTINGS_EXIT
    finally:
        if provider is not None:
            provider.shutdown()
    return 0
