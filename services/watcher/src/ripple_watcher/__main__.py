"""Entry point: `ripple-watcher` or `python -m ripple_watcher`."""

from __future__ import annotations

import argparse
import sys

from ripple_watcher.settings import WatcherSettings

DESCRIPTION = (
    "Watch the cluster (Ingress, IngressClass, Service, EndpointSlice, TLS Secret, "
    "Namespace, Gateway API) and publish every change to Kafka, keyed by tenant."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple-watcher",
        description=DESCRIPTION,
        epilog="Configuration comes from environment variables prefixed RIPPLE_WATCHER_ "
        "(see --print-settings).",
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the effective settings as JSON"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = WatcherSettings()
    if args.print_settings:
        print(settings.model_dump_json(indent=2))
        return 0
    print("ripple-watcher: the service loop is not built yet (issue #3)", file=sys.stderr)
    return 3


if __name__ == "__main__":
    sys.exit(main())
