"""The code standards the project keeps, checked by the README's test command: ruff (lint + format),
mypy on the package, and vermin holding the Python 3.9 floor (agents run 3.9+)."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["swf_lite", "tests", "bench", "swf_lite.py"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def tool(name: str) -> str:
    """A console script installed beside this interpreter (vermin has no ``python -m`` entry)."""
    return str(Path(sys.executable).parent / name)


@pytest.mark.parametrize("args", [("check",), ("format", "--check")])
def test_ruff_is_clean(args):
    result = run("ruff", *args, *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean():
    result = run("mypy")  # configured in setup.cfg: the whole package, every function typed
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_39_floor():
    """No construct newer than Python 3.9 (python_requires says >=3.9). Annotations are strings at run
    time (ruff's FA rules require ``from __future__ import annotations`` where they use 3.10 syntax)."""
    result = subprocess.run([tool("vermin"), "--target=3.9-", "--no-tips", "--violations", *PATHS], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _runtime_unions(tree: ast.Module) -> list[int]:
    """Lines where ``X | None`` is evaluated when the module is imported (not an annotation: those are
    strings under ``from __future__ import annotations``): module-level and class-level assignments,
    default values, decorators and base classes. Python 3.9 raises TypeError there."""
    lines = []
    evaluated: list[ast.AST] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.Assign, ast.AugAssign)):
            evaluated.append(node.value)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            evaluated.append(node.value)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            evaluated += [*node.args.defaults, *(d for d in node.args.kw_defaults if d), *node.decorator_list]
        elif isinstance(node, ast.ClassDef):
            evaluated += [*node.bases, *node.decorator_list]
    for expr in evaluated:
        for sub in ast.walk(expr):
            if isinstance(sub, ast.Subscript):
                for inner in ast.walk(sub.slice):
                    if isinstance(inner, ast.BinOp) and isinstance(inner.op, ast.BitOr):
                        lines.append(inner.lineno)
    return sorted(set(lines))


def test_no_type_unions_evaluated_at_import():
    """vermin checks syntax, not values: ``View = Callable[[Change], Event | None]`` passed it and made
    the whole package fail to import on Python 3.9."""
    found = {}
    for path in sorted((ROOT / "swf_lite").rglob("*.py")):
        lines = _runtime_unions(ast.parse(path.read_text()))
        if lines:
            found[str(path.relative_to(ROOT))] = lines
    assert found == {}, "use Optional[...] / Union[...] in expressions evaluated at import time"
