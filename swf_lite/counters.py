"""The persistent counters (run numbers, agent ids, workflow-execution sequence numbers), declared.

The service hands out values (:meth:`swf_lite.service.Service.next_value`) with one
``UPDATE ... RETURNING`` statement of the store: atomic across threads and processes, surviving
restarts. Seed files and the control API name counters ``next_run_number`` (or the endpoint name).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1


@dataclass(frozen=True)
class Counter:
    endpoint: str  # /api/state/<endpoint>/
    column: str  # swf_state column holding the last value handed out
    time_column: str
    response_key: str
    maximum: int = INT64_MAX  # the last value it may hand out (never wraps, never turns into a float)

    @property
    def key(self) -> str:
        """The name in seed files and the control API: ``next_run_number``."""
        return self.endpoint.replace("-", "_")


COUNTERS = (
    # runs.run_number is a 32-bit integer: a larger run number would be refused by POST /api/runs/
    Counter("next-run-number", "last_run_number", "last_run_start_time", "run_number", maximum=INT32_MAX),
    Counter("next-agent-id", "last_agent_id", "last_agent_registration_time", "agent_id"),
    Counter("next-workflow-execution-id", "last_workflow_execution_id", "last_workflow_execution_time", "sequence"),
)
BY_ENDPOINT = {c.endpoint: c for c in COUNTERS}
BY_KEY = {c.key: c for c in COUNTERS}


def normalize(values: Any) -> dict[str, int]:
    """``{"next_run_number": 200000}`` (or ``{"next-run-number": ...}``) -> ``{endpoint: next value}``.

    Raises ValueError naming the offending key."""
    if not isinstance(values, dict):
        raise ValueError('counters must be an object such as {"next_run_number": 200000}')
    out: dict[str, int] = {}
    for key, value in values.items():
        counter = BY_KEY.get(key) or BY_ENDPOINT.get(key)
        if counter is None:
            raise ValueError(f"unknown counter {key!r}; use one of {', '.join(BY_KEY)}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"counter {key!r} needs a positive integer, not {value!r}")
        if value > counter.maximum:
            raise ValueError(f"counter {key!r} can hand out at most {counter.maximum}, not {value}")
        out[counter.endpoint] = value
    return out
