"""ripple_common.entrypoint: the one command line of the services (help with every setting,
--print-settings with secrets masked, invalid settings and configuration errors exit 2, the
service served under the lifecycle)."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ripple_common.entrypoint import (
    ServiceCommand,
    build_parser,
    load_serve,
    main,
    settings_help,
)
from ripple_common.lifecycle import Lifecycle
from ripple_common.settings import ServiceSettings


class DemoSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_DEMO_", frozen=True, extra="ignore")

    port: int = Field(default=1, ge=1, description="a port")
    key: SecretStr | None = Field(default=None, description="a secret")


class DemoConfigError(ValueError):
    pass


SERVED: list[DemoSettings] = []


async def serve(lc: Lifecycle, settings: DemoSettings) -> None:
    if settings.port == 7:
        raise DemoConfigError("port 7 cannot work")
    SERVED.append(settings)


def command() -> ServiceCommand[DemoSettings]:
    return ServiceCommand(
        prog="ripple-demo",
        description="A demo service.",
        settings=DemoSettings,
        serve=f"{__name__}:serve",
        notes=("A note on the demo.",),
        config_errors=(DemoConfigError,),
        telemetry=False,
    )


def test_help_lists_every_setting_with_its_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(command(), ["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "A demo service." in out
    assert "environment variables prefixed RIPPLE_DEMO_" in out
    assert "A note on the demo." in out
    assert "RIPPLE_DEMO_PORT: a port" in out
    assert "RIPPLE_DEMO_LOG_LEVEL:" in out  # the shared ServiceSettings too
    assert settings_help(DemoSettings) in out
    assert build_parser(command()).prog == "ripple-demo"


def test_print_settings_masks_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIPPLE_DEMO_KEY", "hunter2")
    monkeypatch.setenv("RIPPLE_DEMO_PORT", "9")
    SERVED.clear()
    assert main(command(), ["--print-settings"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out
    assert json.loads(out)["port"] == 9
    assert SERVED == []  # printed, not served


def test_invalid_settings_exit_2_with_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIPPLE_DEMO_PORT", "0")
    assert main(command(), []) == 2
    assert capsys.readouterr().err.startswith("ripple-demo: invalid settings:")


def test_a_configuration_error_while_serving_exits_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RIPPLE_DEMO_PORT", "7")
    assert main(command(), []) == 2
    assert capsys.readouterr().err == "ripple-demo: port 7 cannot work\n"


def test_the_service_is_served_with_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIPPLE_DEMO_PORT", "5")
    SERVED.clear()
    assert main(command(), []) == 0
    assert [s.port for s in SERVED] == [5]


@pytest.mark.parametrize(
    "module", ["ripple_watcher.__main__", "ripple_translator.__main__", "ripple_xds.__main__"]
)
def test_each_service_names_a_serve_that_exists(module: str) -> None:
    service_command = importlib.import_module(module).COMMAND
    assert inspect.iscoroutinefunction(load_serve(service_command))
    assert service_command.prog == module.split(".", maxsplit=1)[0].replace("_", "-")
