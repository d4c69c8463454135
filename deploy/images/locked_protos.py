"""Print the uv.lock pins of the protobuf packages that xds-protos overwrites.

xds-protos ships old copies of `opentelemetry/proto` and `google/rpc`; after `uv sync` the image
build reinstalls the locked real ones (what `./dev sync` does for the development venv):
    python deploy/images/locked_protos.py uv.lock | xargs uv pip install --reinstall --no-deps
"""

from __future__ import annotations

import sys
import tomllib

PACKAGES = ("opentelemetry-proto", "googleapis-common-protos")


def pins(lock_path: str) -> list[str]:
    with open(lock_path, "rb") as f:
        lock = tomllib.load(f)
    versions = {p["name"]: p["version"] for p in lock["package"]}
    return [f"{name}=={versions[name]}" for name in PACKAGES]


if __name__ == "__main__":
    print(" ".join(pins(sys.argv[1] if len(sys.argv) > 1 else "uv.lock")))
