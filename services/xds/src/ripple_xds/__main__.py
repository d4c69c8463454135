"""Entry point: `ripple-xds` or `python -m ripple_xds`."""

from __future__ import annotations

import argparse
import sys

from ripple_common.lifecycle import Lifecycle, run
from ripple_xds.service import serve
from ripple_xds.settings import XdsSettings

DESCRIPTION = (
    "Serve Envoy over ADS (state-of-the-world and Delta) from the snapshots in Redis, "
    "pushing only what changed."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple-xds",
        description=DESCRIPTION,
        epilog="Configuration comes from environment variables prefixed RIPPLE_XDS_ "
        "(see --print-settings). SIGTERM drains: ADS clients get GOAWAY and reconnect "
        "elsewhere.",
    )
    parser.add_argument(
        "--print-settings", action="store_true", help="print the effective settings as JSON"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = XdsSettings()
    if args.print_settings:
        print(settings.model_dump_json(indent=2))
        return 0

    async def _serve(lc: Lifecycle) -> None:
        await serve(lc, settings)

    run(_serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
