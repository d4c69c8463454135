"""Entry point: `ripple-watcher` or `python -m ripple_watcher`."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from ripple_common.lifecycle import Lifecycle, run
from ripple_common.logs import configure_logging
from ripple_common.telemetry import init_tracing
from ripple_watcher.service import ConfigError
from ripple_watcher.settings import WatcherSettings

DESCRIPTION = (
    "Watch the cluster (Ingress, IngressClass, Service, EndpointSlice, TLS Secret, "
    "Namespace, Gateway API) and publish every change to Kafka, keyed by tenant."
)


SCOPE_HELP = (
    "Scope (opt-in; default: everything): RIPPLE_WATCHER_INGRESS_CLASSES=ripple,nginx "
    "publishes only Ingresses of those classes (RIPPLE_WATCHER_INGRESS_INCLUDE_UNCLASSED=true: "
    "and those naming none); RIPPLE_WATCHER_NAMESPACE_SELECTOR='ripple.io/managed=true' (any "
    "equality- or set-based label selector) publishes only objects of matching namespaces. "
    "Objects leaving the scope are published as DELETED, objects entering it as ADDED."
)


def settings_help() -> str:
    """One line per setting: its environment variable and what it does."""
    prefix = WatcherSettings.model_config.get("env_prefix", "")
    lines = ["settings (environment variables):"]
    for name, field in WatcherSettings.model_fields.items():
        lines.append(f"  {prefix}{name.upper()}: {field.description or ''}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple-watcher",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Configuration comes from environment variables prefixed RIPPLE_WATCHER_ "
        "(see --print-settings).\n\n" + SCOPE_HELP + "\n\n" + settings_help(),
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the effective settings as JSON"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = WatcherSettings()
    except ValidationError as exc:
        print(f"ripple-watcher: invalid settings: {exc}", file=sys.stderr)
        return 2
    if args.print_settings:
        print(settings.model_dump_json(indent=2))
        return 0
    # The adapters (kubernetes_asyncio, aiokafka) load only when the service runs: --help and
    # --print-settings stay fast.
    from ripple_watcher.app import serve  # noqa: PLC0415

    configure_logging(service="ripple-watcher", level=settings.log_level, json=settings.log_json)
    provider = init_tracing(service="ripple-watcher", otlp_endpoint=settings.otlp_endpoint)

    async def _serve(lc: Lifecycle) -> None:
        await serve(lc, settings)

    try:
        run(_serve)
    except ConfigError as exc:
        print(f"ripple-watcher: {exc}", file=sys.stderr)
        return 2
    finally:
        provider.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
