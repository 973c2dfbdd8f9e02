"""The testbed's own configuration file, read as the real monitor reads it (``testbed.toml``).

``SWF_TESTBED_CONFIG`` names it (absolute, or a name under ``$SWF_HOME/swf-testbed/workflows/``);
without it, that folder's ``testbed.toml``. A missing or unreadable file gives nulls: the tools then
fall back to their defaults. Standard library only (``tomllib`` from Python 3.11; on older Pythons
``tomli`` when installed, else the file is reported unreadable).
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _toml_reader() -> Any:
    """``tomllib`` (Python 3.11+), else ``tomli`` if installed, else None."""
    for name in ("tomllib", "tomli"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


CONFIG_VAR = "SWF_TESTBED_CONFIG"
HOME_VAR = "SWF_HOME"
DEFAULT_NAME = "testbed.toml"


@dataclass(frozen=True)
class Config:
    """What the tools take from the file; ``file`` None when there is none to read."""

    namespace: str | None = None
    workflow_name: str | None = None
    config: str | None = None
    realtime: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    file: str | None = None
    source: str = "none"  # SWF_TESTBED_CONFIG | default | none
    problem: str | None = None  # why the file could not be used


def config_path(environ: Mapping[str, str]) -> tuple[Path | None, str]:
    """(the file the real monitor would read, where its name came from)."""
    named = (environ.get(CONFIG_VAR) or "").strip()
    home = (environ.get(HOME_VAR) or "").strip()
    folder = Path(home) / "swf-testbed" / "workflows" if home else None
    if named:
        path = Path(named).expanduser()
        if not path.is_absolute():
            path = (folder / named) if folder is not None else Path.cwd() / named
        return path, CONFIG_VAR
    return (folder / DEFAULT_NAME if folder is not None else None), "default"


def load(environ: Mapping[str, str] | None = None) -> Config:
    """The configuration from ``environ`` (default: this process's environment)."""
    path, source = config_path(os.environ if environ is None else environ)
    if path is None:
        return Config(source="none", problem=f"neither {CONFIG_VAR} nor {HOME_VAR} is set")
    if not path.is_file():
        return Config(file=str(path), source=source, problem="file not found")
    toml_reader = _toml_reader()
    if toml_reader is None:
        return Config(file=str(path), source=source, problem="no TOML reader (Python < 3.11 without tomli)")
    try:
        data = toml_reader.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # tomllib.TOMLDecodeError is a ValueError
        return Config(file=str(path), source=source, problem=f"unreadable: {exc}")
    testbed, workflow = _table(data, "testbed"), _table(data, "workflow")
    realtime = workflow.get("realtime")
    return Config(
        namespace=_text(testbed.get("namespace")),
        workflow_name=_text(workflow.get("name")),
        config=_text(workflow.get("config")),
        realtime=realtime if isinstance(realtime, bool) else None,
        parameters={str(k): _plain(v) for k, v in _table(data, "parameters").items()},
        file=str(path),
        source=source,
    )


def _table(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    return value if isinstance(value, dict) else {}


def _plain(value: Any) -> Any:
    """A TOML value as JSON can carry it (TOML dates and times become ISO text)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None
