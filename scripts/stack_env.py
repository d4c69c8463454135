"""The local stack's run directory and client settings (written by `stack/stack up` to
$RIPPLE_RUN/env), and the process checks the scripts that start processes beside it share."""

from __future__ import annotations

import os
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent


def run_dir() -> Path:
    """The stack's run directory: every process's pid, log and data live under it."""
    return Path(os.environ.get("RIPPLE_RUN", REPO_DIR / ".stack"))


def stack_env_file() -> Path:
    return run_dir() / "env"


def pid_alive(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def cmdline(pid: int) -> str:
    """The command line of `pid` (empty when it is gone), to tell our process from a reused pid."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def load_stack_env(run: Path | None = None) -> dict[str, str]:
    """KEY=VALUE lines of the env file (of `run`, default the current run directory); empty
    when the stack was never brought up."""
    env_file = (run / "env") if run is not None else stack_env_file()
    if not env_file.is_file():
        return {}
    pairs = (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}
