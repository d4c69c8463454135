"""Entry point: `ripple-translator` or `python -m ripple_translator`."""

from __future__ import annotations

import argparse
import sys

from ripple_common.lifecycle import Lifecycle, run
from ripple_translator.service import serve
from ripple_translator.settings import TranslatorSettings

DESCRIPTION = (
    "Consume ripple.events, translate each owned tenant's objects into Envoy resources, "
    "and write versioned per-tenant snapshots to Redis."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple-translator",
        description=DESCRIPTION,
        epilog="Configuration comes from environment variables prefixed RIPPLE_TRANSLATOR_ "
        "(see --print-settings).",
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the effective settings as JSON"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = TranslatorSettings()
    if args.print_settings:
        print(settings.model_dump_json(indent=2))
        return 0

    async def _serve(lc: Lifecycle) -> None:
        await serve(lc, settings)

    run(_serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
