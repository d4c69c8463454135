"""docs/settings.md is exactly what `python -m scripts.settings_doc` generates from the
settings classes now, and it lists every variable with its default and meaning."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from ripple_common.settings import ServiceSettings
from scripts import settings_doc
from tests.unit.deploy.support import SETTINGS, known_variables


def test_docs_settings_md_is_current() -> None:
    current = settings_doc.DOC_PATH.read_text()
    assert current == settings_doc.render(), (
        "docs/settings.md is stale: run `.venv/bin/python -m scripts.settings_doc --write`"
    )


def test_check_mode_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    assert settings_doc.main(["--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_every_variable_has_a_row_with_a_meaning() -> None:
    text = settings_doc.render()
    for variable in known_variables():
        rows = [line for line in text.splitlines() if line.startswith(f"| `{variable}` |")]
        assert len(rows) == 1, variable
        meaning = rows[0].rsplit("|", 2)[-2].strip()
        assert meaning, f"{variable} has no description in its settings class"
    assert {s.name for s in settings_doc.SERVICES} == set(SETTINGS)


class _Sample(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="RIPPLE_SAMPLE_", frozen=True, extra="ignore")

    port: int = Field(default=8080, ge=1, lt=65536, description="a port | with a pipe")
    names: frozenset[str] = Field(default=frozenset({"b", "a"}), description="names")
    key: SecretStr | None = Field(default=None, description="a secret")
    empty: str = Field(default="", description="empty")


def test_rows_render_defaults_types_and_constraints() -> None:
    rows = {r.variable: r for r in settings_doc.rows(_Sample)}
    assert rows["RIPPLE_SAMPLE_PORT"].default == "8080"
    assert rows["RIPPLE_SAMPLE_PORT"].type == "int (>= 1, < 65536)"
    assert rows["RIPPLE_SAMPLE_NAMES"].default == '["a", "b"]'
    assert rows["RIPPLE_SAMPLE_KEY"].default == "unset"
    assert rows["RIPPLE_SAMPLE_KEY"].type == "secret str, optional"
    assert rows["RIPPLE_SAMPLE_EMPTY"].default == '""'
    assert settings_doc.cell("a | b\n c") == "a \\| b c"
    # the shared base's fields come first, with the subclass's prefix
    assert next(iter(rows)) == "RIPPLE_SAMPLE_LOG_LEVEL"


def test_a_stale_file_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "settings.md"
    stale.write_text(settings_doc.render().replace("RIPPLE_XDS_LISTEN", "RIPPLE_XDS_LISTEN_OLD"))
    monkeypatch.setattr(settings_doc, "DOC_PATH", stale)
    monkeypatch.setattr(settings_doc, "REPO_DIR", stale.parent)
    assert settings_doc.main(["--check"]) == 1
