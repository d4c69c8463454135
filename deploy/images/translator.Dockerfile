# syntax=docker/dockerfile:1.7
# ripple-translator: translates the cluster's objects into Envoy resources in Redis.
# Build from the repository root (the context is the whole uv workspace, see .dockerignore):
#   docker build -f deploy/images/translator.Dockerfile -t ripple-translator:dev .
# Stage 1 resolves the locked dependencies with uv into a self-contained venv at /opt/ripple;
# the final stage is the same slim Python with that venv only: no uv, no compilers, non-root.
# Base images are pinned to exact versions (pin by digest too when you mirror them).

FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

FROM python:3.11.14-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/ripple
WORKDIR /src
# Dependencies first (a layer that changes only with uv.lock): every workspace member's
# pyproject.toml must be present for uv to read the workspace.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/
COPY services/watcher/pyproject.toml services/watcher/
COPY services/translator/pyproject.toml services/translator/
COPY services/xds/pyproject.toml services/xds/
COPY tools/cli/pyproject.toml tools/cli/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package ripple-translator
# Then the code, installed non-editable so /opt/ripple does not need /src.
COPY libs/common libs/common
COPY services/translator services/translator
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package ripple-translator
# xds-protos overwrites opentelemetry/proto and google/rpc with old copies; put the locked
# real ones back (as ./dev sync does for the development venv).
COPY deploy/images/locked_protos.py /tmp/locked_protos.py
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN --mount=type=cache,target=/root/.cache/uv \
    python /tmp/locked_protos.py uv.lock \
    | xargs uv pip install --python /opt/ripple/bin/python --reinstall --no-deps

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.title="ripple-translator"
RUN groupadd --system --gid 10001 ripple \
 && useradd --system --uid 10001 --gid ripple --no-create-home --shell /usr/sbin/nologin ripple
COPY --from=build /opt/ripple /opt/ripple
ENV PATH=/opt/ripple/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["ripple-translator"]
