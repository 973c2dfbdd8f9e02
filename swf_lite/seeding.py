"""Loading records from a JSON seed file (the demo data in ``data/`` uses the same format).

Format: ``{"<resource>": [records as a client would POST them], ..., "counters": {...}}`` in
dependency order. References may name the parent by a natural key instead of its generated id:
``"run": {"run_number": 100010}``, ``"workflow_definition": {"workflow_name": .., "version": ..}``,
``"workflow": {"filename": ..}``. Records go through the same validation as the API.
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

from swf_lite import counters, fields
from swf_lite.api.http import ApiError
from swf_lite.catalog import BY_NAME, RESOURCES, Resource
from swf_lite.fields import Invalid

log = logging.getLogger("swf_lite.seeding")

DEMO_FILE = Path(__file__).resolve().parent.parent / "data" / "demo.json"
# seed-format names: next-run-number -> next_run_number, ...
COUNTER_KEYS = {c.endpoint.replace("-", "_"): c.endpoint for c in counters.COUNTERS}


def demo_path() -> Path:
    """The demo data: in a checkout ``data/demo.json``, installed as package data otherwise."""
    packaged = Path(__file__).resolve().parent / "data" / "demo.json"
    return DEMO_FILE if DEMO_FILE.exists() else packaged


def load_initial(server) -> None:
    """``--demo`` then ``--seed``, each only into an empty store (else one log line, no change)."""
    s = server.settings
    wanted = [("--demo", demo_path())] if s.demo else []
    wanted += [("--seed", Path(s.seed))] if s.seed else []
    if not wanted:
        return
    if not is_empty(server.ctx.store):
        for flag, path in wanted:
            log.warning("%s skipped: the store in %s already has data (%s is loaded only into an empty "
                        "store; use a new --data-dir or POST /_swf_lite/reset/ first)", flag, s.data_dir,
                        path.name)  # fmt: skip
        return
    for flag, path in wanted:
        loaded = load_file(server.ctx, path)
        log.info("%s loaded %s: %d records", flag, path, sum(loaded.values()))


def is_empty(store) -> bool:
    """True when no resource table has a row (users and the counters row do not count)."""
    store.connect()
    return not any(store.model(r).select().exists() for r in RESOURCES)


def normalize_counters(values: Any) -> dict[str, int]:
    """``{"next_run_number": 200000}`` (or ``{"next-run-number": ...}``) -> ``set_next``'s form.

    Raises ValueError naming the offending key."""
    if not isinstance(values, dict):
        raise ValueError('counters must be an object such as {"next_run_number": 200000}')
    out: dict[str, int] = {}
    for key, value in values.items():
        endpoint = COUNTER_KEYS.get(key) or (key if key in COUNTER_KEYS.values() else None)
        if endpoint is None:
            raise ValueError(f"unknown counter {key!r}; use one of {', '.join(COUNTER_KEYS)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"counter {key!r} needs a positive integer, not {value!r}")
        out[endpoint] = value
    return out


def next_values(store) -> dict[str, int]:
    """What each counter hands out next, keyed like the seed format (``next_run_number``...)."""
    snap = counters.snapshot(store)
    return {key: int(snap[counters.BY_ENDPOINT[endpoint].column]) + 1 for key, endpoint in COUNTER_KEYS.items()}


def load_file(ctx, path: Path) -> dict[str, int]:
    return load(ctx, json.loads(Path(path).read_text(encoding="utf-8")))


def load(ctx, data: dict[str, Any]) -> dict[str, int]:
    """Insert every record in one transaction (all or nothing); returns counts per resource.

    Raises ValueError (naming the resource and record index) for anything it cannot load."""
    store, api = ctx.store, ctx.resources
    if not isinstance(data, dict):
        raise ValueError("seed data must be a JSON object of resource name -> list of records")
    wanted = normalize_counters(data.get("counters") or {})
    loaded: dict[str, int] = {}
    store.connect()
    with store.atomic():
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
                    values = api.clean(r, _resolve(store, r, record), creating=True, strict_choices=False)
                    _keep_recorded_times(r, record, values, ctx.settings.zone)
                    api.save_new(r, values)
                except Invalid as exc:
                    raise ValueError(f"{name}[{i}]: {exc.errors}") from None
                except ApiError as exc:  # e.g. a unique key that is already stored
                    raise ValueError(f"{name}[{i}]: {exc.body}") from None
                except fields.FieldError as exc:
                    raise ValueError(f"{name}[{i}]: {exc}") from None
            loaded[name] = len(records)
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
