"""System agents (plain CRUD and the heartbeat upsert), subscribers and namespaces."""

from __future__ import annotations

import datetime as dt
import logging
import re

import pytest
from api_helpers import (
    ResourceGroupContract,
    error,
    ok,
    running,
    shared_server,
)

from conftest import Client

module_server, server = shared_server()
GROUP = {
    "systemagents": ("id", ["instance_name", "agent_type", "status", "operational_state", "namespace"]),
    "subscribers": ("subscriber_id", ["subscriber_name", "is_active", "delivery_type"]),
}
BEAT = "/api/systemagents/heartbeat/"


def utc(stamp: str) -> dt.datetime:
    assert stamp.endswith("Z")
    return dt.datetime.fromisoformat(stamp[:-1]).replace(tzinfo=dt.timezone.utc)


class TestGroup(ResourceGroupContract):
    GROUP = GROUP


# -- system agents: plain writes -------------------------------------------------------------------


def test_plain_agent_writes_check_choices_strictly(api, anon):
    base = {"instance_name": "daq-agent-alice-1", "agent_type": "daqsim"}
    for key, value in [
        ("agent_type", "TEST"),
        ("agent_type", "STF_Processing"),
        ("status", "ok"),
        ("operational_state", "RUNNING"),
    ]:
        assert error(api.post("/api/systemagents/", json=dict(base, **{key: value}))) == {
            key: [f'"{value}" is not a valid choice.']
        }
    agent = ok(api.post("/api/systemagents/", json=base), 201)
    assert (agent["status"], agent["operational_state"], agent["workflow_enabled"]) == ("UNKNOWN", "STARTING", True)
    assert error(api.post("/api/systemagents/", json=base)) == {
        "instance_name": ["system agent with this instance name already exists."]
    }
    assert error(api.patch(f"/api/systemagents/{agent['id']}/", json={"agent_type": "agent_manager"})) == {
        "agent_type": ['"agent_manager" is not a valid choice.']
    }
    assert ok(anon.get("/api/systemagents/")) == [agent]


def test_agent_not_found(anon):
    assert error(anon.get("/api/systemagents/77/"), 404) == {"detail": "No SystemAgent matches the given query."}


# -- heartbeat -------------------------------------------------------------------------------------


def base_agent_beat(name="data-agent-alice-7", **kw):
    """What BaseAgent.send_heartbeat posts."""
    body = {
        "instance_name": name,
        "agent_type": "DATA",
        "status": "OK",
        "description": "DATA agent. MQ: connected",
        "mq_connected": True,
        "pid": 4242,
        "hostname": "node1.example.org",
        "operational_state": "READY",
        "namespace": "alice-ns",
    }
    body.update(kw)
    return body


def test_heartbeat_upserts_by_instance_name(api, anon):
    before = dt.datetime.now(dt.timezone.utc)
    first = ok(api.post(BEAT, json=base_agent_beat(last_heartbeat="2020-01-01T00:00:00Z")), 201)
    assert first["instance_name"] == "data-agent-alice-7" and first["agent_type"] == "DATA"
    assert "mq_connected" not in first, "extra keys are ignored"
    assert abs(utc(first["last_heartbeat"]) - before) < dt.timedelta(seconds=30), "server time, not the client's"
    second = ok(api.post(BEAT, json=base_agent_beat(status="WARNING", operational_state="PROCESSING")), 200)
    assert second["id"] == first["id"]
    assert (second["status"], second["operational_state"]) == ("WARNING", "PROCESSING")
    assert utc(second["last_heartbeat"]) >= utc(first["last_heartbeat"])
    assert ok(anon.get("/api/systemagents/")) == [second], "the response is the stored agent"


def test_heartbeat_defaults_and_fields_set_only_when_present(api):
    bare = ok(api.post(BEAT, json={"instance_name": "bare"}), 201)
    assert {k: bare[k] for k in ("agent_type", "description", "status", "agent_url", "namespace")} == {
        "agent_type": "other",
        "description": "",
        "status": "OK",
        "agent_url": None,
        "namespace": None,
    }
    assert (bare["workflow_enabled"], bare["operational_state"], bare["current_stf_count"]) == (True, "STARTING", 0)
    full = {
        "instance_name": "bare",
        "agent_type": "fastmon",
        "description": "d",
        "status": "ERROR",
        "agent_url": "http://node1:8080/",
        "namespace": "ns",
        "workflow_enabled": False,
        "operational_state": "PROCESSING",
        "pid": 7,
        "hostname": "h",
        "metadata": {"supervisord_healthy": True},
        "current_stf_count": 3,
        "total_stf_processed": 11,
    }
    assert {k: v for k, v in ok(api.post(BEAT, json=full)).items() if k in full} == full
    again = ok(api.post(BEAT, json={"instance_name": "bare"}))
    assert {k: again[k] for k in ("agent_type", "description", "status", "agent_url", "namespace")} == {
        "agent_type": "other",
        "description": "",
        "status": "OK",
        "agent_url": None,
        "namespace": None,
    }, "always set: from the body or the default"
    kept = (
        "workflow_enabled",
        "operational_state",
        "pid",
        "hostname",
        "metadata",
        "current_stf_count",
        "total_stf_processed",
    )
    assert {k: again[k] for k in kept} == {k: full[k] for k in kept}, "set only when present"


@pytest.mark.parametrize(
    "body",
    [
        {
            "instance_name": "test-script-agent",
            "agent_type": "TEST",
            "status": "OK",
            "description": "x",
            "mq_connected": False,
        },
        {
            "instance_name": "agent-manager-alice",
            "agent_type": "agent_manager",
            "status": "EXITED",
            "operational_state": "EXITED",
            "namespace": None,
            "pid": 1,
            "hostname": "h",
            "description": "",
            "metadata": {"supervisord_healthy": False},
        },
        {
            "instance_name": "processing-agent-alice-3",
            "agent_type": "STF_Processing",
            "status": "OK",
            "workflow_enabled": True,
            "current_stf_count": 2,
            "total_stf_processed": 40,
        },
        {
            "instance_name": "daq-agent-alice-1",
            "agent_type": "daqsim",
            "status": "OK",
            "description": "daq",
            "workflow_enabled": False,
        },
    ],
)
def test_heartbeat_accepts_every_client_payload(api, body):
    got = ok(api.post(BEAT, json=body), 201)
    assert got["instance_name"] == body["instance_name"] and got["agent_type"] == body["agent_type"]
    assert got["status"] == body["status"]


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"agent_type": "x" * 21}, {"agent_type": ["Ensure this field has no more than 20 characters."]}),
        ({"hostname": "h" * 101}, {"hostname": ["Ensure this field has no more than 100 characters."]}),
        ({"instance_name": "i" * 101}, {"instance_name": ["Ensure this field has no more than 100 characters."]}),
        ({"pid": "abc"}, {"pid": ["A valid integer is required."]}),
        ({"status": "S" * 21}, {"status": ["Ensure this field has no more than 20 characters."]}),
        ({"workflow_enabled": "maybe"}, {"workflow_enabled": ["Must be a valid boolean."]}),
    ],
)
def test_heartbeat_values_too_long_or_wrong_are_400(api, anon, extra, expected):
    assert error(api.post(BEAT, json=dict(base_agent_beat(), **extra))) == expected
    assert ok(anon.get("/api/systemagents/")) == []


@pytest.mark.parametrize(
    "body", [{}, {"instance_name": ""}, {"instance_name": "  "}, {"instance_name": None}, {"agent_type": "DATA"}]
)
def test_heartbeat_needs_instance_name(api, body):
    assert error(api.post(BEAT, json=body)) == {"instance_name": ["This field is required."]}


def test_heartbeat_needs_token_and_post(api, anon):
    resp = anon.post(BEAT, json=base_agent_beat())
    assert error(resp, 401) == {"detail": "Authentication credentials were not provided."}
    assert resp.headers["WWW-Authenticate"] == "Token"
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        resp = api.request(method, BEAT, json={})
        assert error(resp, 405) == {"detail": f'Method "{method}" not allowed.'}
        assert "POST" in resp.headers["Allow"]
    assert ok(anon.get("/api/systemagents/")) == []


def age_agent(srv, name: str, seconds: float) -> None:
    model = srv.store.model("systemagents")
    stamp = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(seconds=seconds)
    assert model.update(last_heartbeat=stamp).where(model.instance_name == name).execute() == 1


def states(anon) -> dict[str, tuple[str, str]]:
    return {a["instance_name"]: (a["status"], a["operational_state"]) for a in ok(anon.get("/api/systemagents/"))}


def test_stale_agents_marked_exited(server, api, anon):
    for name in ("old", "recent", "exited", "beating"):
        ok(api.post(BEAT, json=base_agent_beat(name)), 201)
    ok(api.post("/api/systemagents/", json={"instance_name": "never-beat", "agent_type": "data"}), 201)
    ok(api.post(BEAT, json=base_agent_beat("exited", status="EXITED", operational_state="EXITED")))
    age_agent(server, "old", 181)
    age_agent(server, "recent", 170)
    age_agent(server, "exited", 3600)
    age_agent(server, "beating", 3600)
    ok(api.post(BEAT, json=base_agent_beat("beating")))
    assert states(anon) == {
        "old": ("EXITED", "EXITED"),
        "recent": ("OK", "READY"),
        "exited": ("EXITED", "EXITED"),
        "beating": ("OK", "READY"),
        "never-beat": ("UNKNOWN", "STARTING"),
    }
    revived = ok(api.post(BEAT, json=base_agent_beat("old")))
    assert (revived["status"], revived["operational_state"]) == ("OK", "READY")


def test_a_known_agents_heartbeat_and_the_stale_sweep_are_one_write(server, api, anon, caplog):
    """One ``UPDATE … RETURNING`` both records the beat and marks the silent agents EXITED: one write
    lock and one commit per heartbeat, not two (both engines)."""
    for name in ("silent", "beating"):
        ok(api.post(BEAT, json=base_agent_beat(name)), 201)
    age_agent(server, "silent", 3600)
    with caplog.at_level(logging.DEBUG, logger="peewee"):
        beat = ok(api.post(BEAT, json=base_agent_beat("beating", status="WARNING")))
    writes = [r.getMessage() for r in caplog.records
              if r.name == "peewee" and re.search(r"\b(UPDATE|INSERT|DELETE)\b", r.getMessage())]  # fmt: skip
    assert len(writes) == 1 and "RETURNING" in writes[0], writes
    assert beat["status"] == "WARNING"
    assert states(anon) == {"silent": ("EXITED", "EXITED"), "beating": ("WARNING", "READY")}


def test_stale_age_is_configurable(tmp_path, engine):
    with running(tmp_path, engine=engine, stale_agent_seconds=30) as srv:
        api, anon = Client(srv.http_url, srv.token, True), Client(srv.http_url, None, True)
        ok(api.post(BEAT, json=base_agent_beat("a")), 201)
        ok(api.post(BEAT, json=base_agent_beat("b")), 201)
        age_agent(srv, "a", 60)
        ok(api.post(BEAT, json=base_agent_beat("b")))
        assert states(anon)["a"] == ("EXITED", "EXITED")


# -- subscribers -----------------------------------------------------------------------------------


def test_subscriber_registered_twice(api, anon):
    body = {
        "subscriber_name": "data-agent-alice-7-/topic/epictopic",
        "description": "DATA agent subscriber",
        "is_active": True,
        "fraction": 1.0,
    }
    sub = ok(api.post("/api/subscribers/", json=body), 201)
    assert {k: sub[k] for k in body} == body
    assert (sub["delivery_type"], sub["message_filters"], sub["client_location"]) == ("activemq", {}, "")
    again = api.post("/api/subscribers/", json=body)
    assert error(again) == {"subscriber_name": ["subscriber with this subscriber name already exists."]}
    assert "already exists" in again.text.lower() and "subscriber" in again.text.lower()
    assert ok(anon.get("/api/subscribers/")) == [sub]


def test_subscriber_choices_and_addresses(api):
    assert error(api.post("/api/subscribers/", json={"subscriber_name": "s", "delivery_type": "kafka"})) == {
        "delivery_type": ['"kafka" is not a valid choice.']
    }
    sse = ok(
        api.post(
            "/api/subscribers/",
            json={"subscriber_name": "sse_1234abcd", "delivery_type": "sse", "client_ip": "::1", "messages_sent": 3},
        ),
        201,
    )
    assert (sse["delivery_type"], sse["client_ip"], sse["messages_sent"]) == ("sse", "::1", 3)
    assert ok(api.get("/api/subscribers/?delivery_type=sse&is_active=true")) == [sse]
    assert ok(api.get("/api/subscribers/?is_active=false")) == []


# -- namespaces ------------------------------------------------------------------------------------


def test_namespace_ensure_creates_once(api, anon):
    first = ok(api.post("/api/namespaces/ensure/", json={"name": "alice-ns", "owner": "alice"}))
    assert first == {"name": "alice-ns", "owner": "alice", "description": "", "created": True, "status": "success"}
    second = ok(api.post("/api/namespaces/ensure/", json={"name": "alice-ns", "owner": "bob", "description": "new"}))
    assert second == dict(first, created=False), "an existing namespace is returned unchanged"
    listed = ok(anon.get("/api/namespaces/"))
    assert [(n["name"], n["owner"]) for n in listed] == [("alice-ns", "alice")]
    detail = ok(anon.get("/api/namespaces/alice-ns/"))
    assert detail["name"] == "alice-ns" and detail["created_at"].endswith("Z")
    assert error(anon.get("/api/namespaces/nobody/"), 404) == {"detail": "No Namespace matches the given query."}
    described = ok(api.post("/api/namespaces/ensure/", json={"name": "bob-ns", "owner": "bob", "description": "Bob's"}))
    assert (described["description"], described["created"]) == ("Bob's", True)
    assert ok(anon.get("/api/namespaces/?owner=bob"))[0]["name"] == "bob-ns"


@pytest.mark.parametrize(
    "body, message",
    [
        ({}, "name is required"),
        ({"owner": "alice"}, "name is required"),
        ({"name": "", "owner": "a"}, "name is required"),
        ({"name": "ns"}, "owner is required"),
        ({"name": "ns", "owner": None}, "owner is required"),
    ],
)
def test_namespace_ensure_needs_name_and_owner(api, anon, body, message):
    assert error(api.post("/api/namespaces/ensure/", json=body)) == {"error": message, "status": "error"}
    assert ok(anon.get("/api/namespaces/")) == []


def test_namespace_ensure_validates_lengths(api, anon):
    assert error(api.post("/api/namespaces/ensure/", json={"name": "n" * 101, "owner": "alice"})) == {
        "name": ["Ensure this field has no more than 100 characters."]
    }
    assert ok(anon.get("/api/namespaces/")) == []


def test_namespaces_are_read_only(api, anon):
    resp = anon.post("/api/namespaces/ensure/", json={"name": "ns", "owner": "o"})
    assert error(resp, 401) == {"detail": "Authentication credentials were not provided."}
    ok(api.post("/api/namespaces/ensure/", json={"name": "ns", "owner": "o"}))
    for method, path in [
        ("POST", "/api/namespaces/"),
        ("PUT", "/api/namespaces/ns/"),
        ("PATCH", "/api/namespaces/ns/"),
        ("DELETE", "/api/namespaces/ns/"),
        ("GET", "/api/namespaces/ensure/"),
    ]:
        resp = api.request(method, path, json={"name": "ns", "owner": "x"})
        assert error(resp, 405) == {"detail": f'Method "{method}" not allowed.'}, (method, path)
        assert resp.headers.get("Allow"), (method, path)
    assert ok(anon.get("/api/namespaces/ns/"))["owner"] == "o"
