"""Loading records from a JSON seed file (the demo data in ``data/`` uses the same format).

Format: ``{"<resource>": [records as a client would POST them], ..., "counters": {...}}`` in
dependency order. References may name the parent by a natural key instead of its generated id:
``"run": {"run_number": 100010}``, ``"workflow_definition": {"workflow_name": .., "version": ..}``,
``"workflow": {"filename": ..}``. Records go through the service's validation, like API writes.
``"counters"`` takes ``next_run_number``, ``next_agent_id``, ``next_workflow_execution_id``
(the values the counters hand out next).

``--demo`` and ``--seed`` load only into an empty store: restarting with the same flags over the
same data dir keeps the data as it is (one log line says so) instead of failing on duplicates.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

from swf_lite import counters
from swf_lite.catalog import BY_NAME, Resource
from swf_lite.config import Settings
from swf_lite.errors import Invalid
from swf_lite.service import Service

log = logging.getLogger("swf_lite.seeding")

DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "demo.json"


def demo_path() -> Path:
    """The demo data: in a checkout ``data/demo.json``, installed as package data otherwise."""
    packaged = Path(__file__).resolve().parent / "data" / "demo.json"
    return DEMO_FILE if DEMO_FILE.exists() else packaged


def load_initial(settings: Settings, service: Service) -> None:
    """``--demo`` then ``--seed``, each only into an empty store (else one log line, no change)."""
    wanted = [("--demo", demo_path())] if settings.demo else []
    wanted += [("--seed", Path(settings.seed))] if settings.seed else []
    if not wanted:
        return
    if not service.is_empty():
        for flag, path in wanted:
            log.warning("%s skipped: the store in %s already has data (%s is loaded only into an empty "
                        "store; use a new --data-dir or POST /_swf_lite/reset/ first)", flag, settings.data_dir,
                        path.name)  # fmt: skip
        return
    for flag, path in wanted:
        loaded = load_file(service, path)
        log.info("%s loaded %s: %d records", flag, path, sum(loaded.values()))


def load_file(service: Service, path: Path) -> dict[str, int]:
    return load(service, json.loads(Path(path).read_text(encoding="utf-8")))


def load(service: Service, data: Any) -> dict[str, int]:
    """Insert every record in one transaction (all or nothing); returns counts per resource.

    Raises ValueError (naming the resource and record index) for anything it cannot load."""
    if not isinstance(data, dict):
        raise ValueError("seed data must be a JSON object of resource name -> list of records")
    wanted = counters.normalize(data.get("counters") or {})
    loaded: dict[str, int] = {}
    with service.transaction():
        for name, records in data.items():
            if name == "counters":
                continue
            if name not in BY_NAME:
                raise ValueError(f"unknown resource {name!r} in seed data")
            if not isinstance(records, list):
                raise ValueError(f"{name}: expected a list of records")
            r = BY_NAME[name]
            for i, record in enumerate(records):
                if not isinstance(record, dict):
                    raise ValueError(f"{name}[{i}]: expected an object")
                try:
                    service.create(r, _resolve(service, r, record), lenient=True, keep_times=True)
                except Invalid as exc:
                    raise ValueError(f"{name}[{i}]: {exc.errors}") from None
            loaded[name] = len(records)
        if wanted:
            service.set_counters(wanted)
    return loaded


def _resolve(service: Service, r: Resource, record: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"natural_key": value}`` references with the parent's key."""
    out = dict(record)
    for f in r.fields:
        ref = out.get(f.name)
        if f.kind == "fk" and isinstance(ref, dict):
            parent = BY_NAME[str(f.to)]
            model = service.store.model(parent)
            query = model.select(getattr(model, f.to_field or parent.pk.name))
            for key, value in ref.items():
                query = query.where(getattr(model, key) == value)
            row = query.tuples().first()
            out[f.name] = row[0] if row else ref
            if isinstance(out[f.name], uuid.UUID):
                out[f.name] = str(out[f.name])
    return out
