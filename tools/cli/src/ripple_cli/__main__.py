"""Entry point: `ripple COMMAND ...` or `python -m ripple_cli COMMAND ...`.

Each command lives in its own module exposing `register(subparsers)`, which adds its parser and
sets `func` (argparse.Namespace -> exit code) as the parser default."""

from __future__ import annotations

import argparse
import sys

from ripple_cli import replay, sla, status, trace_waterfall


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ripple",
        description="Operate a ripple control plane: replay a tenant's history from the Kafka "
        "event log, read change propagation latency against the SLA, follow one change through "
        "the pipeline (trace) and see which Envoy has which version (status).",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    replay.register(commands)
    sla.register(commands)
    trace_waterfall.register(commands)
    status.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
