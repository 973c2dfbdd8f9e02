"""Issue 12: today's agents and clients of the newer monitor, as flows over the wire.

Each test talks like a testbed component, with a requests session configured the way BaseAgent
configures its own (token header, HTTPS with the generated CA bundle):

* the fast-processing agent of today: it registers an STF file and its fast-monitoring files (with
  ``tf_first``/``tf_last``/``tf_count``), posts slices with the flat ``tf_filename``/``stf_filename``,
  finds each again with ``?run_number=&slice_id=`` (first row) and PATCHes it completed;
* a client written against the newer monitor, which keys slices to their ``fastmon_file``;
* a DAQ simulator that only sends run lifecycle messages, followed by ``/api/run-states/`` and the
  run state's page.
"""

from __future__ import annotations

import itertools

import pytest
import requests
from api_helpers import error, ok, shared_server

module_server, server = shared_server()
_runs = itertools.count(200001)
T0 = "2026-03-31T12:00:00Z"


def register_files(api, tf_files: int = 2, frames: int = 12) -> tuple[int, dict, list[dict]]:
    """What the data and fast-monitoring agents do first: a run, an STF file, its TF files."""
    number = next(_runs)
    run = ok(api.post("/api/runs/", json={"run_number": number, "start_time": T0}), 201)
    stf = ok(api.post("/api/stf-files/", json={
        "run": run["run_id"], "stf_filename": f"swf.{number}.000001.stf", "file_size_bytes": 1024,
        "machine_state": "physics", "status": "registered", "tf_count": frames * tf_files,
        "metadata": {"created_by": "daq", "substate": "physics", "sequence": 1},
    }), 201)  # fmt: skip
    assert stf["tf_count"] == frames * tf_files  # echoed
    tfs = []
    for n in range(tf_files):
        tf = ok(api.post("/api/fastmon-files/", json={
            "stf_file": stf["stf_filename"], "tf_filename": f"swf.{number}.000001_tf_{n:03d}.tf",
            "tf_first": n * frames, "tf_last": n * frames + frames - 1, "tf_count": frames,
            "file_size_bytes": 256, "status": "registered", "metadata": {"sampled": True},
        }), 201)  # fmt: skip
        assert (tf["tf_first"], tf["tf_last"], tf["tf_count"]) == (n * frames, n * frames + frames - 1, frames)
        tfs.append(tf)
    return number, stf, tfs


def test_todays_fast_processing_agent_posts_flat_slices_and_finds_them_by_run_and_slice(api):
    number, stf, tfs = register_files(api)
    ok(api.post("/api/run-states/", json={
        "run_number": number, "phase": "initializing", "state": "imminent", "substate": "preparing",
        "target_worker_count": 2, "active_worker_count": 0, "stf_samples_received": 0, "slices_created": 0,
        "slices_queued": 0, "slices_processing": 0, "slices_completed": 0, "slices_failed": 0,
        "state_changed_at": T0, "metadata": {"execution_id": "exec-1", "slices_per_sample": 3},
    }), 201)  # fmt: skip
    created: dict[tuple[str, int], dict] = {}
    for tf in tfs:  # every TF file of a run restarts slice_id at 0
        base = tf["tf_filename"].rsplit(".", 1)[0]
        for slice_id in range(3):
            body = {"slice_id": slice_id, "tf_first": tf["tf_first"] + 4 * slice_id,
                    "tf_last": tf["tf_first"] + 4 * slice_id + 3, "tf_count": 4,
                    "tf_filename": f"{base}_slice_{slice_id:03d}.tf", "stf_filename": stf["stf_filename"],
                    "run_number": number, "status": "queued", "retries": 0,
                    "metadata": {"execution_id": "exec-1", "created_by": "fast_processing"}}  # fmt: skip
            out = ok(api.post("/api/tf-slices/", json=body), 201)
            assert out["fastmon_file"] == tf["tf_filename"]  # the parent, derived from the slice's name
            assert list(out)[:2] == ["id", "fastmon_file"]
            assert out["tf_filename"] == body["tf_filename"] and out["stf_filename"] == stf["stf_filename"]
            created[(tf["tf_filename"], slice_id)] = out
        ok(api.patch(f"/api/run-states/{number}/", json={"slices_created": 3, "slices_queued": 3}))

    for slice_id in range(3):  # slice results arrive: the agent takes the first row of the filtered list
        found = ok(api.get("/api/tf-slices/", params={"run_number": number, "slice_id": slice_id}))
        assert isinstance(found, list) and len(found) == 2
        first = found[0]
        assert first["id"] == created[(tfs[0]["tf_filename"], slice_id)]["id"]  # lowest id first
        done = ok(api.patch(f"/api/tf-slices/{first['id']}/", json={
            "status": "completed", "processed_at": "2026-03-31T12:05:00Z",
            "metadata": {"execution_id": "exec-1", "worker": "w1"},
        }))  # fmt: skip
        assert done["status"] == "completed" and done["fastmon_file"] == tfs[0]["tf_filename"]
        assert "processed_at" not in done  # no such column: ignored
    remaining = ok(api.get("/api/tf-slices/", params={"run_number": number, "status": "queued"}))
    assert sorted(r["fastmon_file"] for r in remaining) == [tfs[1]["tf_filename"]] * 3


def test_a_slice_named_like_no_file_has_no_parent_and_its_own_name_wins(api):
    number, stf, tfs = register_files(api, tf_files=1)
    body = {"slice_id": 0, "tf_first": 0, "tf_last": 3, "tf_count": 4, "tf_filename": "elsewhere_slice_000.tf",
            "stf_filename": stf["stf_filename"], "run_number": number}  # fmt: skip
    assert ok(api.post("/api/tf-slices/", json=body), 201)["fastmon_file"] is None
    exact = dict(body, slice_id=1, tf_filename=tfs[0]["tf_filename"])  # a slice named exactly like its file
    out = ok(api.post("/api/tf-slices/", json=exact), 201)
    assert out["fastmon_file"] == tfs[0]["tf_filename"]
    renamed = ok(api.patch(f"/api/tf-slices/{out['id']}/", json={"tf_filename": "elsewhere.tf"}))
    assert renamed["fastmon_file"] is None  # written again with a new name: derived again


def test_a_client_of_the_newer_monitor_keys_slices_to_their_fastmon_file(api, anon):
    number, stf, tfs = register_files(api)
    by_parent = {}
    for tf in tfs:
        for slice_id in range(2):
            out = ok(api.post("/api/tf-slices/", json={
                "fastmon_file": tf["tf_filename"], "slice_id": slice_id, "tf_first": slice_id * 6,
                "tf_last": slice_id * 6 + 5, "tf_count": 6, "run_number": number, "status": "queued",
            }), 201)  # fmt: skip
            assert out["fastmon_file"] == tf["tf_filename"]
            assert out["tf_filename"] == tf["tf_filename"] and out["stf_filename"] == stf["stf_filename"]
            by_parent[(tf["tf_filename"], slice_id)] = out["id"]

    second = tfs[1]
    for params in ({"fastmon_file__tf_filename": second["tf_filename"], "slice_id": 1},
                   {"fastmon_file_id": second["tf_file_id"], "slice_id": 1},
                   {"id": by_parent[(second["tf_filename"], 1)]}):  # fmt: skip
        found = ok(anon.get("/api/tf-slices/", params=params))
        assert [r["id"] for r in found] == [by_parent[(second["tf_filename"], 1)]], params
    through_stf = ok(anon.get("/api/tf-slices/", params={"fastmon_file__stf_file__stf_filename": stf["stf_filename"]}))
    assert sorted(r["id"] for r in through_stf) == sorted(by_parent.values())
    done = ok(api.patch(f"/api/tf-slices/{by_parent[(second['tf_filename'], 1)]}/", json={"status": "completed"}))
    assert done["fastmon_file"] == second["tf_filename"]  # a PATCH keeps the parent it was given

    again = {"fastmon_file": second["tf_filename"], "slice_id": 1, "tf_first": 0, "tf_last": 1, "tf_count": 2,
             "run_number": number, "tf_filename": "other_name.tf"}  # fmt: skip
    assert error(api.post("/api/tf-slices/", json=again)) == {
        "non_field_errors": ["The fields fastmon_file, slice_id must make a unique set."]
    }
    unknown = {"fastmon_file": "no-such.tf", "slice_id": 0, "tf_first": 0, "tf_last": 1, "tf_count": 2,
               "run_number": number}  # fmt: skip
    assert error(api.post("/api/tf-slices/", json=unknown)) == {
        "fastmon_file": ["Object with tf_filename=no-such.tf does not exist."]
    }
    assert error(
        api.post(
            "/api/tf-slices/", json={"slice_id": 0, "tf_first": 0, "tf_last": 1, "tf_count": 2, "run_number": number}
        )
    ) == {  # fmt: skip
        "tf_filename": ["This field is required."],
        "stf_filename": ["This field is required."],
    }


def test_filter_values_are_checked_like_django_filter(anon):
    got = error(anon.get("/api/tf-slices/", params={"run_number": "abc", "slice_id": "1.5", "status": ""}))
    assert got == {"run_number": ["Enter a number."], "slice_id": ["Enter a number."]}  # every bad one at once
    assert error(anon.get("/api/tf-slices/", params={"fastmon_file_id": "nope"})) == {
        "fastmon_file_id": ["Enter a valid UUID."]
    }
    assert error(anon.get("/api/stf-files/", params={"workflow_id": "x"})) == {"workflow_id": ["Enter a valid UUID."]}
    assert error(anon.get("/api/logs/", params={"start_time": "yesterday"})) == {
        "start_time": ["Enter a valid date/time."]
    }
    assert error(anon.get("/api/runs/", params={"run_number": "1,x"})) == {"run_number": ["Enter a number."]}
    assert ok(anon.get("/api/tf-slices/", params={"fastmon_file_id": "00000000-0000-4000-8000-000000000000"})) == []
    assert ok(anon.get("/api/runs/", params={"run_number": ""})) == []  # empty: no filter (and no rows yet)


def test_one_executions_messages_come_oldest_first(api, anon):
    for n in range(5):
        ok(api.post("/api/workflow-messages/", json={"message_type": "stf_gen", "execution_id": "exec-9",
                                                     "message_content": {"n": n}}), 201)  # fmt: skip
    ok(api.post("/api/workflow-messages/", json={"message_type": "stf_gen", "execution_id": "exec-8",
                                                 "message_content": {"n": 99}}), 201)  # fmt: skip
    oldest_first = ok(anon.get("/api/workflow-messages/", params={"execution_id": "exec-9"}))
    assert [m["message_content"]["n"] for m in oldest_first] == [0, 1, 2, 3, 4]
    newest_first = ok(anon.get("/api/workflow-messages/", params={"execution_id": "exec-9", "ordering": "-sent_at"}))
    assert [m["message_content"]["n"] for m in newest_first] == [4, 3, 2, 1, 0]
    unfiltered = ok(anon.get("/api/workflow-messages/"))
    assert [m["message_content"]["n"] for m in unfiltered] == [99, 4, 3, 2, 1, 0]


# -- run lifecycle: a DAQ simulator that only sends messages ----------------------------------------


def send(api, msg_type: str, run_number, **content) -> dict:
    """A lifecycle message the way the DAQ simulator's broker messages are recorded: type and run
    in the content; the message's own columns may be empty."""
    body = {"message_type": msg_type, "sender_agent": "daq-simulator", "namespace": "test",
            "message_content": {"msg_type": msg_type, "run_id": run_number, **content}}  # fmt: skip
    return ok(api.post("/api/workflow-messages/", json=body), 201)


def run_state(anon, number: int) -> dict | None:
    resp = anon.get(f"/api/run-states/{number}/")
    return None if resp.status_code == 404 else ok(resp)


def test_a_run_followed_through_every_lifecycle_message(api, anon, server):
    number = next(_runs)
    states = []
    steps = [("run_imminent", {"state": "beam", "substate": "not_ready", "execution_id": "exec-42"}),
             ("start_run", {"state": "run", "substate": "physics"}),
             ("pause_run", {"state": "run", "substate": "standby"}),
             ("resume_run", {"state": "run", "substate": "physics"}),
             ("end_run", {})]  # fmt: skip
    for msg_type, content in steps:
        send(api, msg_type, number, **content)
        states.append(run_state(anon, number))
    assert [(s["phase"], s["state"], s["substate"]) for s in states] == [
        ("initializing", "beam", "not_ready"),
        ("physics", "run", "physics"),
        ("physics", "run", "standby"),
        ("physics", "run", "physics"),
        ("completed", "ended", None),
    ]
    first = states[0]
    assert first["target_worker_count"] == 0 and first["slices_created"] == 0
    assert first["metadata"] == {"execution_id": "exec-42"}
    assert all(s["metadata"] == {"execution_id": "exec-42"} for s in states)
    changed = [s["state_changed_at"] for s in states]
    assert changed == sorted(changed) and len(set(changed)) == len(changed)
    page = requests.get(f"{server.http_url}/run-states/{number}/", timeout=10)
    assert page.status_code == 200 and "completed" in page.text and "ended" in page.text


CREATED_BY = {  # a run seen first in each message type: the row created, then that message applied
    "run_imminent": ("initializing", "beam", "not_ready"),
    "start_run": ("physics", "beam", "not_ready"),
    "pause_run": ("physics", "beam", "not_ready"),
    "resume_run": ("physics", "beam", "not_ready"),
    "end_run": ("completed", "ended", None),
}


@pytest.mark.parametrize("msg_type", sorted(CREATED_BY))
def test_each_lifecycle_type_creates_the_run_state_it_needs(api, anon, msg_type):
    number = next(_runs)
    send(api, msg_type, str(number), state="beam", substate="not_ready")  # run ids arrive as text too
    got = run_state(anon, number)
    assert (got["phase"], got["state"], got["substate"]) == CREATED_BY[msg_type]
    assert got["metadata"] == {} and got["active_worker_count"] == 0


@pytest.mark.parametrize("msg_type", sorted(CREATED_BY))
def test_lifecycle_inputs_fall_back_to_the_messages_own_columns(api, anon, msg_type):
    number = next(_runs)
    ok(api.post("/api/workflow-messages/", json={"message_type": msg_type, "run_id": str(number),
                                                 "execution_id": "exec-c", "message_content": {}}), 201)  # fmt: skip
    got = run_state(anon, number)
    assert got is not None and got["metadata"] == {"execution_id": "exec-c"}
    expected_state = "ended" if msg_type == "end_run" else "imminent"  # nothing to copy: the new row's own
    assert got["state"] == expected_state


def test_only_lifecycle_messages_with_a_readable_run_move_a_run_state(api, anon):
    number = next(_runs)
    send(api, "stf_gen", number, state="run")
    assert run_state(anon, number) is None
    stored = send(api, "start_run", "run-x")  # not an integer: stored, no transition
    assert ok(anon.get(f"/api/workflow-messages/{stored['message_id']}/"))["message_content"]["run_id"] == "run-x"
    assert ok(anon.get("/api/run-states/")) == []


def test_the_agents_own_patches_and_metadata_stay(api, anon):
    number = next(_runs)
    ok(api.post("/api/run-states/", json={
        "run_number": number, "phase": "initializing", "state": "imminent", "target_worker_count": 4,
        "state_changed_at": T0, "metadata": {"execution_id": "from-runner", "slices_per_sample": 3},
    }), 201)  # fmt: skip
    ok(api.patch(f"/api/run-states/{number}/", json={"slices_created": 7}))
    send(api, "start_run", number, state="run", substate="physics", execution_id="from-daq")
    got = run_state(anon, number)
    assert got["metadata"] == {"execution_id": "from-runner", "slices_per_sample": 3}  # kept: it had one
    assert (got["slices_created"], got["target_worker_count"], got["phase"]) == (7, 4, "physics")
    ok(api.patch(f"/api/run-states/{number}/", json={"phase": "draining"}))
    assert run_state(anon, number)["phase"] == "draining"
