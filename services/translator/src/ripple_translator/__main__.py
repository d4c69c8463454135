"""Entry point: `ripple-translator` or `python -m ripple_translator`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ripple_common.entrypoint import ServiceCommand
from ripple_common.entrypoint import main as service_main
from ripple_translator.settings import TranslatorSettings

DESCRIPTION = (
    "Consume ripple.events, translate each owned tenant's objects into Envoy resources, "
    "and write versioned per-tenant snapshots to Redis."
)


COMMAND = ServiceCommand(
    prog="ripple-translator",
    description=DESCRIPTION,
    settings=TranslatorSettings,
    serve="ripple_translator.app:serve",  # imported only to run
    telemetry=False,  # ripple_translator.app.serve sets up logging and tracing itself
)


def main(argv: Sequence[str] | None = None) -> int:
    return service_main(COMMAND, argv)


if __name__ == "__main__":
    sys.exit(main())
