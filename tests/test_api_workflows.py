"""STF workflows and their stages, workflow messages (POST and lists; the stream is tested elsewhere),
workflow definitions and executions."""

from __future__ import annotations

import uuid

from api_helpers import (
    NOW,
    ResourceGroupContract,
    create,
    error,
    ok,
    payload,
    shared_server,
)

module_server, server = shared_server()
GROUP = {
    "workflows": ("workflow_id", ["filename", "namespace", "execution_id", "run_id", "current_status"]),
    "workflow-stages": ("stage_id", ["workflow", "agent_name", "status"]),
    "workflow-messages": (
        "message_id",
        ["execution_id", "message_type", "sender_agent", "namespace", "run_id", "queue_name"],
    ),
    "workflow-definitions": ("id", ["workflow_name", "version", "workflow_type", "created_by"]),
    "workflow-executions": ("execution_id", ["status", "namespace", "executed_by", "workflow_name"]),
}


class TestGroup(ResourceGroupContract):
    GROUP = GROUP


# -- STF workflows and stages ----------------------------------------------------------------------


def test_workflow_run_id_is_a_string_and_order_is_newest_first(api, anon):
    for minute in (10, 30, 20):
        create(api, "workflows", run_id=100010 + minute, generated_time=f"2026-03-31T12:{minute}:00Z")
    listed = ok(anon.get("/api/workflows/"))
    assert [w["generated_time"][11:16] for w in listed] == ["12:30", "12:20", "12:10"]
    assert {w["run_id"] for w in listed} == {"100020", "100030", "100040"}
    assert [w["run_id"] for w in ok(anon.get("/api/workflows/?run_id=100030"))] == ["100030"]
    assert all((w["current_status"], w["current_agent"]) == ("generated", "daqsim") for w in listed)


def test_workflow_choices(api):
    body = payload(api, "workflows")
    bad = {"daq_state": "running", "daq_substate": "PHYSICS", "current_status": "done", "current_agent": "runner"}
    assert error(api.post("/api/workflows/", json=dict(body, **bad))) == {
        k: [f'"{v}" is not a valid choice.'] for k, v in bad.items()
    }
    good = create(
        api, "workflows", daq_state="run", daq_substate="physics", current_status="data_received", current_agent="data"
    )
    assert good["daq_state"] == "run" and good["current_status"] == "data_received"
    assert error(api.post("/api/workflows/", json=dict(body, filename=good["filename"]))) == {
        "filename": ["stf workflow with this filename already exists."]
    }


def test_stage_foreign_key_and_unique_together(api, anon):
    workflow = create(api, "workflows")
    body = {"workflow": workflow["workflow_id"], "agent_name": "processing-agent-alice-3", "agent_type": "processing"}
    stage = ok(api.post("/api/workflow-stages/", json=body), 201)
    assert stage["workflow"] == workflow["workflow_id"] and stage["status"] == "generated"
    assert error(api.post("/api/workflow-stages/", json=body)) == {
        "non_field_errors": ["The fields workflow, agent_name, agent_type must make a unique set."]
    }
    missing = str(uuid.uuid4())
    assert error(api.post("/api/workflow-stages/", json=dict(body, workflow=missing))) == {
        "workflow": [f'Invalid pk "{missing}" - object does not exist.']
    }
    assert error(api.post("/api/workflow-stages/", json=dict(body, workflow=12))) == {
        "workflow": ['Invalid pk "12" - object does not exist.']
    }
    assert ok(anon.get(f"/api/workflow-stages/?workflow={workflow['workflow_id']}")) == [stage]
    assert error(anon.get("/api/workflow-stages/?workflow=nope")) == {"workflow": ["Enter a valid UUID."]}
    done = ok(
        api.patch(
            f"/api/workflow-stages/{stage['stage_id']}/",
            json={"status": "processing_complete", "processing_time_seconds": "2.5"},
        )
    )
    assert done["status"] == "processing_complete" and done["processing_time_seconds"] == 2.5
    assert error(anon.get(f"/api/workflow-stages/{uuid.uuid4()}/"), 404) == {
        "detail": "No AgentWorkflowStage matches the given query."
    }


def test_deleting_a_workflow_removes_its_stages_and_unlinks_its_messages(api, anon):
    workflow = create(api, "workflows")
    stage = create(api, "workflow-stages", workflow=workflow["workflow_id"])
    message = create(api, "workflow-messages", workflow=workflow["workflow_id"])
    assert message["workflow"] == workflow["workflow_id"]
    assert api.delete(f"/api/workflows/{workflow['workflow_id']}/").status_code == 204
    assert error(anon.get(f"/api/workflow-stages/{stage['stage_id']}/"), 404)
    assert ok(anon.get(f"/api/workflow-messages/{message['message_id']}/"))["workflow"] is None


# -- workflow messages -----------------------------------------------------------------------------


def test_message_create_and_lists(api, anon):
    body = {
        "message_type": "stf_gen",
        "sender_agent": "daq-agent-alice-1",
        "sender_type": "daqsim",
        "namespace": "alice-ns",
        "execution_id": "stf_datataking-alice-0001",
        "run_id": 100010,
        "queue_name": "/topic/epictopic",
        "message_content": {"msg_type": "stf_gen", "filename": "a.stf"},
        "sent_at": "2020-01-01T00:00:00Z",
    }
    first = ok(api.post("/api/workflow-messages/", json=body), 201)
    assert uuid.UUID(first["message_id"]) and first["run_id"] == "100010"
    assert first["message_metadata"] == {} and first["message_content"] == body["message_content"]
    assert not first["sent_at"].startswith("2020"), "sent_at is server time"
    second = ok(api.post("/api/workflow-messages/", json=dict(body, message_type="run_imminent")), 201)
    assert ok(anon.get("/api/workflow-messages/")) == [second, first], "newest first"
    assert ok(anon.get("/api/workflow-messages/?message_type=stf_gen")) == [first]
    assert ok(anon.get("/api/workflow-messages/?run_id=100010&namespace=alice-ns")) == [second, first]
    assert error(api.post("/api/workflow-messages/", json=dict(body, sender_type="DAQ"))) == {
        "sender_type": ['"DAQ" is not a valid choice.']
    }
    assert error(api.post("/api/workflow-messages/", json=dict(body, workflow=str(uuid.uuid4()))))["workflow"]
    assert len(ok(anon.get("/api/workflow-messages/"))) == 2


# -- definitions and executions --------------------------------------------------------------------


def definition_body(**kw):
    body = {
        "workflow_name": "fast_processing",
        "version": "1.0",
        "workflow_type": "simulation",
        "definition": "def run():\n    pass\n",
        "parameter_values": {"fast_processing": {"num_tf_per_slice": 10}},
        "created_by": "alice",
        "created_at": "2020-01-01T00:00:00",
    }
    body.update(kw)
    return body


def test_definition_unique_together_and_lookup(api, anon):
    d = ok(api.post("/api/workflow-definitions/", json=definition_body()), 201)
    assert isinstance(d["id"], int) and not d["created_at"].startswith("2020"), "created_at is read-only"
    assert error(api.post("/api/workflow-definitions/", json=definition_body())) == {
        "non_field_errors": ["The fields workflow_name, version must make a unique set."]
    }
    v2 = ok(api.post("/api/workflow-definitions/", json=definition_body(version="2.0")), 201)
    found = ok(anon.get("/api/workflow-definitions/", params={"workflow_name": "fast_processing", "version": "2.0"}))
    assert found == [v2]
    assert ok(anon.get("/api/workflow-definitions/?workflow_name=fast_processing")) == [d, v2]
    assert error(api.post("/api/workflow-definitions/", json=definition_body(version="3", definition=" "))) == {
        "definition": ["This field may not be blank."]
    }


def test_execution_lifecycle(api, anon):
    d = ok(api.post("/api/workflow-definitions/", json=definition_body()), 201)
    body = {
        "execution_id": "fast_processing-alice-0001",
        "workflow_definition": d["id"],
        "namespace": "alice-ns",
        "status": "running",
        "executed_by": "alice",
        "start_time": "2026-03-31T12:00:00",
        "parameter_values": {"fast_processing": {"num_tf_per_slice": 10}, "git_version": {"commit": "abc"}},
    }
    ex = ok(api.post("/api/workflow-executions/", json=body), 201)
    assert ex["execution_id"] == body["execution_id"] and ex["workflow_definition"] == d["id"]
    assert error(api.post("/api/workflow-executions/", json=body)) == {
        "execution_id": ["workflow execution with this execution id already exists."]
    }
    assert (
        ok(anon.get(f"/api/workflow-executions/{body['execution_id']}/"))["parameter_values"]
        == (body["parameter_values"])
    )
    assert ok(anon.get("/api/workflow-executions/?status=running")) == [ex]
    assert ok(anon.get("/api/workflow-executions/?workflow_name=fast_processing")) == [ex]
    assert ok(anon.get("/api/workflow-executions/?workflow_name=other")) == []
    done = ok(
        api.patch(f"/api/workflow-executions/{ex['execution_id']}/", json={"status": "completed", "end_time": NOW})
    )
    assert (done["status"], done["end_time"]) == ("completed", "2026-03-31T12:00:00.000000Z")
    cleared = ok(api.patch(f"/api/workflow-executions/{ex['execution_id']}/", json={"end_time": None}))
    assert cleared["end_time"] is None
    assert error(anon.get("/api/workflow-executions/nope-0001/"), 404) == {
        "detail": "No WorkflowExecution matches the given query."
    }


def test_execution_foreign_key_errors(api, anon):
    body = payload(api, "workflow-executions")
    assert error(api.post("/api/workflow-executions/", json=dict(body, workflow_definition=999))) == {
        "workflow_definition": ['Invalid pk "999" - object does not exist.']
    }
    assert error(api.post("/api/workflow-executions/", json=dict(body, workflow_definition="fast"))) == {
        "workflow_definition": ["Incorrect type. Expected pk value, received str."]
    }
    assert ok(anon.get("/api/workflow-executions/")) == []


def test_executions_newest_first_and_status_lists(api, anon):
    for hour, status in ((10, "running"), (12, "completed"), (11, "failed")):
        create(api, "workflow-executions", start_time=f"2026-03-31T{hour}:00:00Z", status=status)
    assert [e["status"] for e in ok(anon.get("/api/workflow-executions/"))] == ["completed", "failed", "running"]
    assert [e["status"] for e in ok(anon.get("/api/workflow-executions/?status=running,failed"))] == [
        "failed",
        "running",
    ]
    assert [e["status"] for e in ok(anon.get("/api/workflow-executions/?ordering=start_time"))] == [
        "running",
        "failed",
        "completed",
    ]
