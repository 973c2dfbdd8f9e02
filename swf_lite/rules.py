"""Domain rules of particular resources, as pure functions; the service applies them on every write,
whatever the door (API, pages, seed, the broker bridge).

* **A tf-slice's parent.** Two client generations post slices: today's fast-processing agent sends
  the flat ``tf_filename`` (the slice's own name, ``<parent minus extension>_slice_NNN.tf``) and
  ``stf_filename``; clients of the newer monitor send ``fastmon_file`` (the parent's tf_filename).
  With a parent the flat names default to the parent's; without one the parent is derived from the
  flat name.
* **The run lifecycle.** The real monitor's broker consumer moves a run's RunState when it records
  ``run_imminent``, ``start_run``, ``pause_run``, ``resume_run`` or ``end_run``; swf-lite is the
  broker substitute, so storing such a workflow message does the same, in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from swf_lite.fields import INT32

LIFECYCLE = ("run_imminent", "start_run", "pause_run", "resume_run", "end_run")
PHYSICS = ("start_run", "pause_run", "resume_run")  # these also set phase "physics"
RUN_STATE_TEXT = 20  # max length of RunState.state / substate: longer message values are cut
NEW_RUN_STATE: dict[str, Any] = {
    "phase": "initializing", "state": "imminent", "substate": "preparing", "target_worker_count": 0,
    "active_worker_count": 0, "stf_samples_received": 0, "slices_created": 0, "slices_queued": 0,
    "slices_processing": 0, "slices_completed": 0, "slices_failed": 0, "metadata": {},
}  # fmt: skip
_SLICE_SUFFIX = re.compile(r"_slice_\d+(?=\.[^./]*$|$)")


# -- tf-slices ---------------------------------------------------------------------------------------


def slice_defaults(data: Mapping[str, Any], parent: Mapping[str, Any] | None) -> dict[str, Any]:
    """``data`` with the flat names a slice takes from its ``parent`` fast-monitoring file (its row)
    where the client did not send them."""
    out = dict(data)
    if parent is not None:
        out.setdefault("tf_filename", parent["tf_filename"])
        out.setdefault("stf_filename", parent["stf_file"])
    return out


def parent_names(tf_filename: str) -> list[str]:
    """The fast-monitoring file names a slice named ``tf_filename`` may belong to, best first: the
    name itself, then the name without ``_slice_<digits>`` before its extension."""
    names = [tf_filename]
    stripped = _SLICE_SUFFIX.sub("", tf_filename, count=1)
    if stripped != tf_filename:
        names.append(stripped)
    return names


# -- the run lifecycle -----------------------------------------------------------------------------


def _inputs(message: Mapping[str, Any]) -> tuple[dict[str, Any], Any, Any, Any]:
    """(content, msg_type, run_id, execution_id): each from ``message_content``, else the message's column."""
    content = message.get("message_content")
    content = content if isinstance(content, dict) else {}

    def pick(key: str, column: str) -> Any:
        value = content.get(key)
        return value if value not in (None, "") else message.get(column)

    return content, pick("msg_type", "message_type"), pick("run_id", "run_id"), pick("execution_id", "execution_id")


def lifecycle_run(message: Mapping[str, Any]) -> int | None:
    """The run number a stored workflow message moves, or None (not a lifecycle type, or a run id
    that does not read as an integer a RunState can have)."""
    _, msg_type, run_id, _ = _inputs(message)
    if msg_type not in LIFECYCLE or run_id is None or isinstance(run_id, bool):
        return None
    try:
        number = int(str(run_id))
    except ValueError:
        return None
    return number if INT32[0] <= number <= INT32[1] else None


def lifecycle_values(message: Mapping[str, Any], row: Mapping[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    """The RunState fields the message sets: every field for a new row (``row`` None), else only the
    changed ones. Call only when :func:`lifecycle_run` gave a number."""
    content, msg_type, run_id, execution_id = _inputs(message)
    values: dict[str, Any] = dict(NEW_RUN_STATE, run_number=int(str(run_id))) if row is None else {}
    if msg_type == "end_run":
        values.update(state="ended", substate=None, phase="completed")
    else:
        for key in ("state", "substate"):
            if content.get(key) not in (None, ""):
                values[key] = str(content[key])[:RUN_STATE_TEXT]
        if msg_type in PHYSICS:
            values["phase"] = "physics"
    values["state_changed_at"] = now
    if execution_id not in (None, ""):
        metadata = values.get("metadata", row.get("metadata") if row is not None else None)
        metadata = dict(metadata) if isinstance(metadata, dict) else {}
        if not metadata.get("execution_id"):
            values["metadata"] = {**metadata, "execution_id": str(execution_id)}
    return values
