"""`ripple sla` (being written)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("sla", help="(not yet available)")
    parser.set_defaults(func=lambda _args: 2)
