"""`python -m tests.integration.translator_service.crashing_translator`: the real translator
(settings from the environment, as `python -m ripple_translator`), wired with a write hook
that dies like SIGKILL would (no drain, no commit, no close) right after the first tenant
version is durable in Redis and before its Kafka offset is committed. The crash-safety test's
way in: production settings carry no test hook."""

from __future__ import annotations

import os
import sys

import structlog

from ripple_common.lifecycle import Lifecycle, run
from ripple_translator.app import serve
from ripple_translator.settings import TranslatorSettings

ABORT_EXIT_CODE = 86
log = structlog.get_logger("tests.crashing_translator")


def abort_after_write(tenant: str, version: int) -> None:
    log.warning("test.abort_after_write", tenant=tenant, version=version)
    os._exit(ABORT_EXIT_CODE)


def main() -> int:
    settings = TranslatorSettings()

    async def _serve(lc: Lifecycle) -> None:
        await serve(lc, settings, after_write=abort_after_write)

    run(_serve)
    return 0


if __name__ == "__main__":
    sys.exit(main())
