"""The architecture, checked: every module sits in a layer and imports only from layers below it.

Below the doors (the HTTP API, the pages, the server) nothing imports bottle, cheroot or
``swf_lite.api``: the service, the store and the change feed serve every door the same way. A new
module must be placed in :data:`LAYERS` (the test fails until it is).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "swf_lite"
DOORS = 8  # layers from here up may speak HTTP
LAYERS = {
    # declarations and pure helpers
    "swf_lite": 0, "swf_lite.timefmt": 0, "swf_lite.errors": 0, "swf_lite.config": 0, "swf_lite.clientenv": 0,
    "swf_lite.counters": 0, "swf_lite.catalog": 0,
    "swf_lite.fields": 1, "swf_lite.rules": 1.5, "swf_lite.events": 1, "swf_lite.tls": 1, "swf_lite.tlschild": 1.5,
    "swf_lite.reference": 1,
    # storage
    "swf_lite.db.dialect": 2, "swf_lite.db.models": 3, "swf_lite.db.store": 4, "swf_lite.db": 5,
    # the domain
    "swf_lite.feed": 5.5, "swf_lite.service": 6, "swf_lite.auth": 6, "swf_lite.context": 7, "swf_lite.seeding": 7,
    # doors
    "swf_lite.api": 8, "swf_lite.api.http": 8,
    "swf_lite.api.resources": 9, "swf_lite.api.special": 9, "swf_lite.api.stream": 9, "swf_lite.api.schema": 9,
    "swf_lite.api.control": 9, "swf_lite.app": 10, "swf_lite.hosts": 10,
    "swf_lite.pages": 8, "swf_lite.pages.charts": 1, "swf_lite.pages.site": 1, "swf_lite.pages.render": 8.5,
    "swf_lite.pages.views": 9, "swf_lite.pages.admin": 9.5,
    "swf_lite.mcp": 0, "swf_lite.mcp.testbed": 1, "swf_lite.mcp.toolkit": 7.5, "swf_lite.mcp.queries": 7.6,
    "swf_lite.mcp.records": 7.7, "swf_lite.mcp.overview": 7.7, "swf_lite.mcp.control": 7.7, "swf_lite.mcp.tools": 7.8,
    "swf_lite.mcp.protocol": 8, "swf_lite.mcp.route": 9, "swf_lite.mcp.config": 12,
    # processes and tools
    "swf_lite.edge": 10, "swf_lite.bridge": 10,
    "swf_lite.server": 11, "swf_lite.demo": 12, "swf_lite.cli": 13, "swf_lite.__main__": 14,
    "swf_lite.testing": 14, "swf_lite.pytest_plugin": 15,
}  # fmt: skip
WEB = ("bottle", "cheroot")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Modules ``path`` imports (``from swf_lite import x`` counts as ``swf_lite.x`` when x is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in LAYERS}
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer():
    assert sorted(set(MODULES) - set(LAYERS)) == [], "place new modules in LAYERS"
    assert sorted(set(LAYERS) - set(MODULES)) == [], "remove modules that no longer exist"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_strictly_downward(name):
    mine = LAYERS[name]
    upward = sorted(m for m in imports(MODULES[name]) if m in LAYERS and m != name and LAYERS[m] >= mine)
    assert upward == [], f"{name} (layer {mine}) imports {upward}"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if LAYERS[n] < DOORS))
def test_nothing_below_the_doors_speaks_http(name):
    web = sorted(m for m in imports(MODULES[name]) if m.split(".")[0] in WEB or m.startswith("swf_lite.api"))
    assert web == [], f"{name} is below the doors but imports {web}"
