"""The persistent counters: run numbers, agent ids, workflow-execution sequence numbers.

Each step is one ``UPDATE ... RETURNING`` statement: atomic in SQLite across threads and
processes sharing the file, with no read-then-write window. Values survive restarts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swf_lite import timefmt
from swf_lite.store import START_VALUES, Store


@dataclass(frozen=True)
class Counter:
    endpoint: str  # /api/state/<endpoint>/
    column: str  # swf_state column holding the last value handed out
    time_column: str
    response_key: str


COUNTERS = (
    Counter("next-run-number", "last_run_number", "last_run_start_time", "run_number"),
    Counter("next-agent-id", "last_agent_id", "last_agent_registration_time", "agent_id"),
    Counter("next-workflow-execution-id", "last_workflow_execution_id", "last_workflow_execution_time", "sequence"),
)
BY_ENDPOINT = {c.endpoint: c for c in COUNTERS}


def next_value(store: Store, counter: Counter) -> int:
    """Hand out the next number of ``counter``."""
    sql = (
        f'UPDATE "swf_state" SET "{counter.column}" = "{counter.column}" + 1, '
        f'"{counter.time_column}" = ? WHERE "id" = 1 RETURNING "{counter.column}"'
    )
    cursor = store.db.execute_sql(sql, (timefmt.to_db(timefmt.utcnow()),))
    rows = cursor.fetchall()  # consume fully so the statement completes and commits
    return int(rows[0][0])


def snapshot(store: Store) -> dict[str, Any]:
    """The last values handed out and when, for the admin API (and a future state page)."""
    State = store.models["_state"]
    row = State.select().where(State.id == 1).dicts().first() or {}
    row.pop("id", None)
    return {k: timefmt.iso(v) if k.endswith("_time") else v for k, v in row.items()}


def set_next(store: Store, values: dict[str, int]) -> None:
    """Make the given counters hand out the given numbers next (``{"next-run-number": 200000}``)."""
    State = store.models["_state"]
    updates = {}
    for endpoint, value in values.items():
        counter = BY_ENDPOINT[endpoint]
        updates[counter.column] = int(value) - 1
    State.update(**updates).where(State.id == 1).execute()


__all__ = ["COUNTERS", "BY_ENDPOINT", "START_VALUES", "next_value", "snapshot", "set_next"]
