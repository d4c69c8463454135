"""A small Dockerfile reader and the rules deploy/images/*.Dockerfile must follow (pure logic).

No Docker engine exists on the development machines, so the images cannot be built here; these
rules check what the issue asks of them instead: multi-stage, base images pinned, a non-root
USER in the final stage, no build tools (compilers, uv, pip installs) in the final stage, an
ENTRYPOINT that is a real console script, and COPY sources that exist in the build context.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# A tag with a full x.y.z version (optionally suffixed: 3.11.14-slim-bookworm) or a digest.
_PINNED = re.compile(r"^[\w./-]+(:v?\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = ("gcc", "g++", "clang", "make", "build-essential", "cargo", "rustc", "uv", "git")


@dataclass(frozen=True, slots=True)
class Instruction:
    keyword: str  # upper case
    args: str
    line: int


@dataclass(frozen=True, slots=True)
class Stage:
    image: str
    alias: str | None
    instructions: tuple[Instruction, ...] = field(default_factory=tuple)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile: continuation lines joined, comments dropped."""
    logical: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not buffer and (not stripped or stripped.startswith("#")):
            continue
        if buffer and stripped.startswith("#"):
            continue
        if not buffer:
            start = number
        if stripped.endswith("\\"):
            buffer += stripped[:-1].rstrip() + " "
            continue
        logical.append((start, buffer + stripped))
        buffer = ""
    stages: list[Stage] = []
    current: list[Instruction] = []
    image, alias = "", None
    for number, line in logical:
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword=keyword.upper(), args=args.strip(), line=number)
        if instruction.keyword == "FROM":
            if image:
                stages.append(Stage(image=image, alias=alias, instructions=tuple(current)))
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            image = words[0]
            alias = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            current = []
        elif image:
            current.append(instruction)
    if image:
        stages.append(Stage(image=image, alias=alias, instructions=tuple(current)))
    return stages


def exec_form(args: str) -> list[str]:
    """`["a", "b"]` (JSON) or shell words."""
    text = args.strip()
    if text.startswith("["):
        return [w.strip().strip('"') for w in text.strip("[]").split(",") if w.strip()]
    return shlex.split(text)


def copy_sources(instruction: Instruction) -> list[str]:
    """The build-context sources of a COPY without --from (empty for --from copies)."""
    words = shlex.split(instruction.args)
    if any(w.startswith("--from") for w in words):
        return []
    plain = [w for w in words if not w.startswith("--")]
    return plain[:-1]


def problems(text: str, *, console_scripts: set[str]) -> list[str]:
    """Every rule the Dockerfile breaks (empty: it follows them all)."""
    stages = parse(text)
    out: list[str] = []
    if len(stages) < 2:
        out.append("not multi-stage: the final image must not be the build stage")
    aliases = {s.alias for s in stages if s.alias}
    for stage in stages:
        if stage.image in aliases:
            continue
        if not _PINNED.match(stage.image) or ("@" not in stage.image and ":" not in stage.image):
            out.append(f"base image {stage.image} is not pinned to an exact version or digest")
        if stage.image.endswith(":latest"):
            out.append(f"base image {stage.image} uses :latest")
    if not stages:
        return out
    final = stages[-1]
    if final.alias and final.alias in {s.alias for s in stages[:-1]}:
        out.append("the final stage reuses a build stage alias")
    users = final.all("USER")
    if not users:
        out.append("final stage has no USER: it would run as root")
    elif users[-1].args.split(":")[0] in ("root", "0"):
        out.append(f"final stage runs as {users[-1].args}")
    for run in final.all("RUN"):
        words = set(re.split(r"[\s;&|]+", run.args))
        tools = sorted(words & set(BUILD_TOOLS))
        if tools:
            out.append(f"final stage line {run.line} brings build tools: {', '.join(tools)}")
        if "pip" in words or ("install" in words and ("apt-get" in words or "apk" in words)):
            out.append(f"final stage line {run.line} installs packages")
    for copy in final.all("COPY"):
        if "--from=uv" in copy.args or "/uv " in copy.args:
            out.append(f"final stage line {copy.line} copies uv into the final image")
    entry = final.all("ENTRYPOINT")
    if not entry:
        out.append("final stage has no ENTRYPOINT")
    else:
        program = exec_form(entry[-1].args)[0]
        if program not in console_scripts:
            out.append(f"ENTRYPOINT {program} is not a console script of the workspace")
    return out
