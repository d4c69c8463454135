"""docs/annotations.md lists every annotation of the catalog with the catalog's status."""

from __future__ import annotations

import re
from pathlib import Path

from ripple_translator.translate.catalog import CATALOG, PREFIX

DOC = Path(__file__).resolve().parents[3] / "docs" / "annotations.md"
ROW = re.compile(rf"^\| `{re.escape(PREFIX)}([a-z0-9-]+)` \| ([^|]+) \|", re.MULTILINE)


def documented() -> dict[str, str]:
    return {m.group(1): m.group(2).strip() for m in ROW.finditer(DOC.read_text())}


def test_every_catalog_annotation_is_documented_and_nothing_else() -> None:
    assert sorted(documented()) == sorted(CATALOG)


def test_documented_status_matches_the_catalog() -> None:
    statuses = documented()

    assert {n: statuses[n] for n in CATALOG} == {n: e.support.value for n, e in CATALOG.items()}
