"""Runs, STF files, fastmon files, TF slices, workers, run states and system-state events."""

from __future__ import annotations

import logging
import uuid

from api_helpers import (
    BY_NAME,
    NOW,
    ResourceGroupContract,
    create,
    error,
    not_found_detail,
    ok,
    payload,
    shared_server,
)

module_server, server = shared_server()
# From resources.md: the key clients use in detail URLs, and the filters each list honours.
GROUP = {
    "runs": ("run_id", ["run_number"]),
    "stf-files": ("file_id", ["stf_filename", "run", "run_number", "status", "machine_state", "workflow_id"]),
    "fastmon-files": ("tf_file_id", ["tf_filename", "stf_filename", "status", "run_number"]),
    "tf-slices": ("id", ["run_number", "slice_id", "status", "stf_filename", "tf_filename", "assigned_worker"]),
    "workers": ("worker_id", ["run_number", "status", "location"]),
    "run-states": ("run_number", []),
    "system-state-events": ("event_id", ["run_number", "event_type", "state"]),
}


class TestGroup(ResourceGroupContract):
    GROUP = GROUP


# -- runs ------------------------------------------------------------------------------------------


def test_run_key_is_server_side_and_run_number_unique(api):
    run = create(api, "runs", run_number=100010, run_id=5, start_time="2026-03-31T12:00:00Z")
    assert isinstance(run["run_id"], int) and run["run_id"] != 5 and run["run_number"] == 100010
    again = error(api.post("/api/runs/", json={"run_number": 100010, "start_time": NOW}))
    assert again == {"run_number": ["run with this run number already exists."]}
    assert len(ok(api.get("/api/runs/"))) == 1


def test_run_end_time_patch(api):
    run = create(api, "runs", run_number=100011, run_conditions={"beam": "on", "energy": 10.0})
    assert run["end_time"] is None
    ended = ok(api.patch(f"/api/runs/{run['run_id']}/", json={"end_time": "2026-03-31T13:00:00.5+00:00"}))
    assert ended["end_time"] == "2026-03-31T13:00:00.500000Z"
    assert ended["run_conditions"] == {"beam": "on", "energy": 10.0}


def test_run_number_range(api):
    assert error(api.post("/api/runs/", json={"run_number": 2**31, "start_time": NOW})) == {
        "run_number": ["Ensure this value is less than or equal to 2147483647."]
    }
    assert create(api, "runs", run_number="42")["run_number"] == 42, "numeric strings are integers"
    assert error(api.post("/api/runs/", json={"run_number": 4.5, "start_time": NOW})) == {
        "run_number": ["A valid integer is required."]
    }


def test_run_not_found_shapes(api, anon):
    assert error(anon.get("/api/runs/999999/"), 404) == {"detail": "No Run matches the given query."}
    assert error(anon.get("/api/runs/abc/"), 404) == {"detail": "Not found."}
    assert error(anon.get(f"/api/runs/{10**30}/"), 404) == {"detail": "No Run matches the given query."}
    assert error(api.patch("/api/runs/abc/", json={}), 404) == {"detail": "Not found."}


def test_a_patch_is_one_statement_on_its_row_and_a_missing_row_is_404_before_400(server, api, anon, caplog):
    """PATCH writes with one ``UPDATE … RETURNING`` (no read first); bad data for a missing row is still
    the 404 DRF gives (it looks the row up first), for an existing one a 400 that changes nothing."""
    run = create(api, "runs")
    url = f"/api/runs/{run['run_id']}/"
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        patched = ok(api.patch(url, json={"end_time": NOW}))
    on_runs = [
        m
        for m in (r.getMessage() for r in caplog.records if r.name == "peewee")
        if any(f'{verb} "runs"' in m for verb in ("FROM", "UPDATE", "INTO"))
    ]  # not PostgreSQL's NOTIFY
    assert len(on_runs) == 1 and "RETURNING" in on_runs[0], on_runs
    assert patched["end_time"] is not None and ok(anon.get(url)) == patched
    assert error(api.patch("/api/runs/999999/", json={"run_number": "x"}), 404) == not_found_detail(BY_NAME["runs"])
    assert error(api.patch(url, json={"run_number": "x"}), 400) == {"run_number": ["A valid integer is required."]}
    assert ok(anon.get(url)) == patched


def test_deleting_a_run_with_files_is_clean(api, anon):
    run = create(api, "runs")
    stf = create(api, "stf-files", run=run["run_id"])
    assert api.delete(f"/api/runs/{run['run_id']}/").status_code == 204
    assert error(anon.get(f"/api/stf-files/{stf['file_id']}/"), 404) == not_found_detail(BY_NAME["stf-files"])


# -- STF files -------------------------------------------------------------------------------------


def test_stf_file_foreign_key_errors(api, anon):
    body = payload(api, "stf-files")
    for run, message in [
        (999999, 'Invalid pk "999999" - object does not exist.'),
        ("abc", "Incorrect type. Expected pk value, received str."),
        ({"run_id": 1}, "Incorrect type. Expected pk value, received dict."),
        (True, "Incorrect type. Expected pk value, received bool."),
    ]:
        assert error(api.post("/api/stf-files/", json=dict(body, run=run))) == {"run": [message]}
    assert ok(anon.get("/api/stf-files/")) == []
    assert create(api, "stf-files", run=str(body["run"]))["run"] == body["run"], "a numeric string is a pk"


def test_stf_file_as_the_data_agent_sends_it(api):
    run = create(api, "runs", run_number=100020)
    body = {
        "run": run["run_id"],
        "stf_filename": "swf.100020.000001.stf",
        "file_size_bytes": 5 * 2**32,
        "machine_state": "physics",
        "status": "registered",
        "metadata": {
            "created_by": "data-agent-alice-7",
            "substate": "physics",
            "start": "20250801143000",
            "end": "20250801143010",
            "sequence": 1,
            "ünïcode": "✓",
        },
        "file_id": str(uuid.uuid4()),  # read-only: ignored
    }
    stf = ok(api.post("/api/stf-files/", json=body), 201)
    assert str(uuid.UUID(stf["file_id"])) == stf["file_id"] != body["file_id"]
    assert stf["file_size_bytes"] == 5 * 2**32
    assert stf["metadata"] == body["metadata"]
    assert stf["created_at"].endswith("Z")
    assert error(api.post("/api/stf-files/", json=dict(body, metadata=None))) == {
        "stf_filename": ["stf file with this stf filename already exists."]
    }
    # PATCH replaces the whole metadata value (no merge)
    patched = ok(api.patch(f"/api/stf-files/{stf['file_id']}/", json={"status": "processed", "metadata": {"x": 1}}))
    assert patched["status"] == "processed" and patched["metadata"] == {"x": 1}


def test_stf_file_not_found_shapes(anon):
    assert error(anon.get(f"/api/stf-files/{uuid.uuid4()}/"), 404) == {"detail": "No StfFile matches the given query."}
    assert error(anon.get("/api/stf-files/12/"), 404) == {"detail": "Not found."}


def test_stf_run_number_filter_wants_digits(api):
    stf = create(api, "stf-files")
    run = ok(api.get(f"/api/runs/{stf['run']}/"))
    assert ok(api.get(f"/api/stf-files/?run_number={run['run_number']}")) == [stf]
    assert set(error(api.get("/api/stf-files/?run_number=abc"))) == {"run_number"}
    assert ok(api.get("/api/stf-files/?status=registered,failed&run_number=")) == [stf], "empty value: no filter"


def test_stf_status_choices(api):
    body = payload(api, "stf-files")
    assert error(api.post("/api/stf-files/", json=dict(body, status="Processed"))) == {
        "status": ['"Processed" is not a valid choice.']
    }
    for status in ("registered", "processing", "processed", "failed", "done"):
        assert create(api, "stf-files", status=status)["status"] == status


# -- fastmon files ---------------------------------------------------------------------------------


def test_fastmon_file_keyed_by_stf_filename(api, anon):
    stf = create(api, "stf-files", stf_filename="swf.100030.000001.stf")
    body = {
        "stf_file": "swf.100030.000001.stf",
        "tf_filename": "swf.100030.000001_tf_001.tf",
        "tf_first": 1,
        "tf_last": 100,
        "tf_count": 100,
        "file_size_bytes": 2**33,
        "status": "registered",
        "metadata": {"simulation": True},
    }
    tf = ok(api.post("/api/fastmon-files/", json=body), 201)
    assert uuid.UUID(tf["tf_file_id"])
    assert {k: tf[k] for k in body} == body, "tf_first/tf_last/tf_count are echoed"
    assert ok(anon.get(f"/api/fastmon-files/{tf['tf_file_id']}/")) == tf
    assert error(api.post("/api/fastmon-files/", json=body)) == {
        "tf_filename": ["fast mon file with this tf filename already exists."]
    }
    missing = dict(body, stf_file="nope.stf", tf_filename="other.tf")
    assert error(api.post("/api/fastmon-files/", json=missing)) == {
        "stf_file": ["Object with stf_filename=nope.stf does not exist."]
    }
    assert error(api.post("/api/fastmon-files/", json=dict(missing, stf_file=stf["file_id"]))) == {
        "stf_file": [f"Object with stf_filename={stf['file_id']} does not exist."]
    }, "the parent's filename, not its id"
    assert len(ok(anon.get("/api/fastmon-files/"))) == 1


def test_fastmon_not_found(anon):
    assert error(anon.get(f"/api/fastmon-files/{uuid.uuid4()}/"), 404) == {
        "detail": "No FastMonFile matches the given query."
    }


# -- TF slices -------------------------------------------------------------------------------------


def slice_body(n: int, **kw):
    body = {
        "slice_id": n,
        "tf_first": n * 10,
        "tf_last": n * 10 + 9,
        "tf_count": 10,
        "tf_filename": f"tf_001_slice_{n:03d}.tf",
        "stf_filename": "swf.100040.000001.stf",
        "run_number": 100040,
        "status": "queued",
        "retries": 0,
        "metadata": {"execution_id": "fast_processing-alice-0001", "created_by": "fp"},
    }
    body.update(kw)
    return body


def test_tf_slices_unique_together(api, anon):
    first = ok(api.post("/api/tf-slices/", json=slice_body(0)), 201)
    assert isinstance(first["id"], int)
    assert error(api.post("/api/tf-slices/", json=slice_body(0))) == {
        "non_field_errors": ["The fields tf_filename, slice_id must make a unique set."]
    }
    second = ok(api.post("/api/tf-slices/", json=slice_body(0, tf_filename="other.tf")), 201)
    clash = api.patch(f"/api/tf-slices/{second['id']}/", json={"tf_filename": first["tf_filename"]})
    assert error(clash) == {"non_field_errors": ["The fields tf_filename, slice_id must make a unique set."]}
    assert ok(anon.get(f"/api/tf-slices/{second['id']}/")) == second


def test_tf_slices_filtered_list_is_plain_and_first_is_the_match(api):
    for n in range(5):
        ok(api.post("/api/tf-slices/", json=slice_body(n)), 201)
    ok(api.post("/api/tf-slices/", json=slice_body(3, run_number=100041, tf_filename="x.tf")), 201)
    found = ok(api.get("/api/tf-slices/?run_number=100040&slice_id=3"))
    assert isinstance(found, list) and len(found) == 1 and found[0]["tf_filename"] == "tf_001_slice_003.tf"
    everything = ok(api.get("/api/tf-slices/"))
    assert isinstance(everything, list) and [s["id"] for s in everything] == sorted(s["id"] for s in everything)
    done = ok(
        api.patch(
            f"/api/tf-slices/{found[0]['id']}/",
            json={"status": "completed", "processed_at": NOW, "metadata": {"result": "ok"}},
        )
    )
    assert done["status"] == "completed" and done["metadata"] == {"result": "ok"}
    assert "processed_at" not in done, "unknown keys are ignored"
    assert ok(api.get("/api/tf-slices/?status=completed")) == [done]
    free_text = ok(api.patch(f"/api/tf-slices/{done['id']}/", json={"status": "resubmitted-by-hand"}))
    assert free_text["status"] == "resubmitted-by-hand"


# -- workers ---------------------------------------------------------------------------------------


def test_worker_key_is_client_supplied(api, anon):
    body = payload(api, "workers", worker_id="panda-job.42_w%41 x")
    worker = ok(api.post("/api/workers/", json=body), 201)
    assert worker["worker_id"] == "panda-job.42_w%41 x"
    assert ok(anon.get("/api/workers/panda-job.42_w%2541%20x/")) == worker
    assert error(api.post("/api/workers/", json=body)) == {"worker_id": ["worker with this worker id already exists."]}
    assert error(anon.get("/api/workers/panda-job.43/"), 404) == {"detail": "No Worker matches the given query."}


# -- run states ------------------------------------------------------------------------------------


def test_run_state_counters_read_modify_write(api, anon):
    state = create(
        api,
        "run-states",
        run_number=100050,
        phase="initializing",
        state="imminent",
        substate="preparing",
        target_worker_count=4,
    )
    assert state["slices_created"] == 0 and state["run_number"] == 100050
    for _ in range(3):
        current = ok(api.get("/api/run-states/100050/"))
        ok(
            api.patch(
                "/api/run-states/100050/",
                json={
                    "stf_samples_received": current["stf_samples_received"] + 1,
                    "slices_created": current["slices_created"] + 5,
                },
            )
        )
    final = ok(anon.get("/api/run-states/100050/"))
    assert (final["stf_samples_received"], final["slices_created"]) == (3, 15)
    assert error(api.post("/api/run-states/", json=payload(api, "run-states", run_number=100050))) == {
        "run_number": ["run state with this run number already exists."]
    }
    assert error(anon.get("/api/run-states/100051/"), 404) == {"detail": "No RunState matches the given query."}


# -- system-state events ---------------------------------------------------------------------------


def test_system_state_events_ordered_by_timestamp(api, anon):
    for minute in (30, 10, 20):
        create(api, "system-state-events", timestamp=f"2026-03-31T12:{minute}:00Z", event_data={"m": minute})
    got = ok(anon.get("/api/system-state-events/"))
    assert [e["event_data"]["m"] for e in got] == [10, 20, 30]
    assert [e["timestamp"] for e in ok(anon.get("/api/system-state-events/?ordering=-timestamp"))] == [
        "2026-03-31T12:30:00.000000Z",
        "2026-03-31T12:20:00.000000Z",
        "2026-03-31T12:10:00.000000Z",
    ]


def test_lists_without_a_search_of_their_own_take_search(api, anon):
    """swf-lite's ``?search=``: a substring of any text field (what the pages' search box sends)."""
    run = create(api, "runs")
    for name in ("swf.000001.stf", "swf.000002.stf", "calib.000003.stf"):
        create(api, "stf-files", stf_filename=name, run=run["run_id"])
    names = [f["stf_filename"] for f in ok(anon.get("/api/stf-files/?search=swf."))]
    assert names == ["swf.000001.stf", "swf.000002.stf"]
    assert ok(anon.get("/api/stf-files/?search=CALIB&limit=5"))["count"] == 1  # ASCII case folded
    assert ok(anon.get("/api/stf-files/?search=nothing-like-it")) == []
