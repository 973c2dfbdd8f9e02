"""Loading records from a JSON seed file (the demo data in ``data/`` uses the same format).

Format: ``{"<resource>": [records as a client would POST them], ..., "counters": {...}}`` in
dependency order. References may name the parent by a natural key instead of its generated id:
``"run": {"run_number": 100010}``, ``"workflow_definition": {"workflow_name": .., "version": ..}``,
``"workflow": {"filename": ..}``. Records go through the same validation as the API.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from swf_lite import counters, fields
from swf_lite.catalog import BY_NAME, Resource
from swf_lite.fields import Invalid

DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "demo.json"
COUNTER_KEYS = {"next_run_number": "next-run-number", "next_agent_id": "next-agent-id",
                "next_workflow_execution_id": "next-workflow-execution-id"}  # fmt: skip


def demo_path() -> Path:
    """The demo data: in a checkout ``data/demo.json``, installed as package data otherwise."""
    packaged = Path(__file__).resolve().parent / "data" / "demo.json"
    return DEMO_FILE if DEMO_FILE.exists() else packaged


def load_initial(server) -> None:
    s = server.settings
    if s.demo:
        load_file(server.ctx, demo_path())
    if s.seed:
        load_file(server.ctx, s.seed)


def load_file(ctx, path: Path) -> dict[str, int]:
    return load(ctx, json.loads(Path(path).read_text(encoding="utf-8")))


def load(ctx, data: dict[str, Any]) -> dict[str, int]:
    """Insert every record in one transaction (all or nothing); returns counts per resource."""
    store, api = ctx.store, ctx.resources
    loaded: dict[str, int] = {}
    store.connect()
    with store.atomic():
        for name, records in data.items():
            if name == "counters":
                continue
            if name not in BY_NAME:
                raise ValueError(f"unknown resource {name!r} in seed data")
            r = BY_NAME[name]
            for i, record in enumerate(records):
                try:
                    values = api.clean(r, _resolve(store, r, record), creating=True, strict_choices=False)
                except Invalid as exc:
                    raise ValueError(f"{name}[{i}]: {exc.errors}") from None
                _keep_recorded_times(r, record, values, ctx.settings.zone)
                api.save_new(r, values)
            loaded[name] = len(records)
        wanted = {COUNTER_KEYS[k]: v for k, v in (data.get("counters") or {}).items() if k in COUNTER_KEYS}
        if wanted:
            counters.set_next(store, wanted)
    return loaded


def _resolve(store, r: Resource, record: dict[str, Any]) -> dict[str, Any]:
    """Replace ``{"natural_key": value}`` references with the parent's key."""
    out = dict(record)
    for f in r.fields:
        ref = out.get(f.name)
        if f.kind == "fk" and isinstance(ref, dict):
            parent = BY_NAME[f.to]
            model = store.model(parent)
            query = model.select(getattr(model, f.to_field or parent.pk.name))
            for key, value in ref.items():
                query = query.where(getattr(model, key) == value)
            row = query.tuples().first()
            out[f.name] = row[0] if row else ref
            if isinstance(out[f.name], uuid.UUID):
                out[f.name] = str(out[f.name])
    return out


def _keep_recorded_times(r: Resource, record: dict, values: dict, zone) -> None:
    """Recorded ``created_at``/``sent_at``-style times in seed data win over "now"."""
    for f in r.all_fields:
        if f.read_only and f.kind == "datetime" and record.get(f.name):
            values[f.name] = fields.convert(f, record[f.name], zone)
