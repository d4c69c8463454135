from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("service", ["watcher", "translator", "xds"])
def test_each_service_explains_itself(service: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", f"ripple_{service}", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert f"ripple-{service}" in out
    assert f"RIPPLE_{service.upper()}_" in out
