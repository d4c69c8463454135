"""Read the local stack's client settings, written by `stack/stack up` to $RIPPLE_RUN/env."""

from __future__ import annotations

import os
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def stack_env_file() -> Path:
    return Path(os.environ.get("RIPPLE_RUN", REPO_DIR / ".stack")) / "env"


def load_stack_env() -> dict[str, str]:
    """KEY=VALUE lines of the env file; empty when the stack was never brought up."""
    env_file = stack_env_file()
    if not env_file.is_file():
        return {}
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}
