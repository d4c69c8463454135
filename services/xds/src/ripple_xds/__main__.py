"""Entry point: `ripple-xds` or `python -m ripple_xds`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ripple_common.entrypoint import ServiceCommand
from ripple_common.entrypoint import main as service_main
from ripple_xds.settings import XdsSettings

DESCRIPTION = (
    "Serve Envoy over ADS (state-of-the-world and Delta) from the snapshots in Redis, "
    "pushing only what changed."
)


COMMAND = ServiceCommand(
    prog="ripple-xds",
    description=DESCRIPTION,
    settings=XdsSettings,
    serve="ripple_xds.app:serve",  # imported only to run
    notes=("SIGTERM drains: ADS clients get GOAWAY and reconnect elsewhere.",),
)


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
