"""The code standards the project keeps, checked by the README's test command: ruff (lint + format),
mypy on the package, and vermin holding the Python 3.9 floor (agents run 3.9+)."""

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
