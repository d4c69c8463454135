"""`ripple replay` (being written)."""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("replay", help="(not yet available)")
    parser.set_defaults(func=lambda _args: 2)
