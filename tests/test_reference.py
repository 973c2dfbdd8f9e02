"""The docs stand alone: ``docs/resources.md`` is what the catalog renders (and the renderer skips
nothing), and no file of the project points into a folder outside it."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import pytest

from swf_lite import reference
from swf_lite.catalog import RESOURCES
from swf_lite.config import ENV_PREFIX, Settings
from swf_lite.counters import COUNTERS

ROOT = Path(__file__).resolve().parent.parent
RESOURCES_MD = ROOT / "docs" / "resources.md"
CONTRACT_MD = ROOT / "docs" / "contract.md"
# Spelled in pieces, so that this file does not contain what it looks for.
FORBIDDEN = ("../" + "shared", "shared/" + "contract")
SKIP_DIRS = {".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis", ".venv", "venv",
             "build", "dist", "node_modules", "test-artifacts"}  # fmt: skip
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".webp", ".pdf", ".gz", ".zip", ".whl", ".pyc",
                   ".sqlite3", ".db", ".woff", ".woff2", ".ttf"}  # fmt: skip


@pytest.fixture(scope="module")
def rendered() -> str:
    return reference.render()


def test_resources_md_is_the_rendered_catalog(rendered):
    assert RESOURCES_MD.exists(), f"docs/resources.md is missing; create it with: {reference.COMMAND}"
    committed = RESOURCES_MD.read_text(encoding="utf-8")
    assert committed == rendered, f"docs/resources.md is stale; regenerate it with: {reference.COMMAND}"


def test_render_is_deterministic(rendered):
    assert reference.render() == rendered
    assert rendered.endswith("\n") and not rendered.endswith("\n\n")


@pytest.mark.parametrize("r", RESOURCES, ids=[r.name for r in RESOURCES])
def test_every_resource_field_and_filter_is_rendered(rendered, r):
    assert f"## {r.name}\n" in rendered
    assert f"`/api/{r.name}/`" in rendered
    assert f"`{r.model}`" in rendered
    section = rendered.split(f"\n## {r.name}\n", 1)[1].split("\n## ", 1)[0]
    missing = [f.name for f in r.all_fields if f"| `{f.name}` |" not in section]
    assert missing == [], f"fields of {r.name} not in its table"
    missing = [flt.param for flt in r.filters if f"| `{flt.param}` |" not in section]
    assert missing == [], f"filters of {r.name} not in its table"
    for param, _ in r.filter_ordering:
        assert f"`?{param}=`" in section


def test_every_counter_is_rendered(rendered):
    section = rendered.split("\n## Counters\n", 1)[1]
    for c in COUNTERS:
        assert f"`POST /api/state/{c.endpoint}/`" in section
        assert f"`{c.response_key}`" in section
        assert f"{c.maximum:,}" in section


def test_contract_names_every_server_option_and_links_the_reference():
    text = CONTRACT_MD.read_text(encoding="utf-8")
    missing = [ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)]
    missing = [var for var in missing if f"`{var}`" not in text]
    assert missing == [], "docs/contract.md, section Environment variables"
    assert "](resources.md)" in text
    documented = set(re.findall(r"`(SWF_LITE_[A-Z_]+)`", text))
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)} | {"SWF_LITE_DATA"}
    assert documented - known == set(), "docs/contract.md names variables swf-lite does not read"


def project_text_files() -> list[Path]:
    """Every text file of the checkout (build output, caches, virtualenvs and binaries left out)."""
    found: list[Path] = []
    for here, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(files):
            path = Path(here) / name
            if path.suffix.lower() in BINARY_SUFFIXES or ".sqlite3" in name:
                continue
            data = path.read_bytes()
            if b"\0" in data[:8192]:
                continue
            found.append(path)
    return found


def test_nothing_points_outside_the_project():
    files = project_text_files()
    assert RESOURCES_MD in files and Path(__file__).resolve() in files  # the walk does reach the docs
    offenders = []
    for path in files:
        text = path.read_bytes().decode("utf-8", errors="replace")
        offenders += [f"{path.relative_to(ROOT)}: {word}" for word in FORBIDDEN if word in text]
    assert offenders == [], "the project must stand alone (users never have that folder)"
