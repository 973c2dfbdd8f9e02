"""Issue 11 item 9: schemathesis over every operation of ``/api/schema/``, against a live server.

Bounded and reproducible: a fixed number of generated cases per operation, derandomized (the same
cases on every run). Each response must be no 5xx, conform to the document (status, headers,
content type, body schema, ``Allow`` on 405) and, if it is an error, be JSON with a DRF shape.

Left out, because the server is deliberately so (see bench/bench_schemathesis.py for the full CLI run):

* ``negative_data_rejection``: the server is lenient like DRF ("5" is an integer, times may use a
  space or no zone, unknown query parameters and body keys are ignored);
* ``positive_data_acceptance``: uniqueness and the existence of a foreign key's target cannot be said
  in OpenAPI, so schema-valid bodies may still get a 400.
"""

from __future__ import annotations

import collections

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from swf_lite.api.schema import document
from swf_lite.testing import ServerOptions, SubprocessServer

EXAMPLES = 5  # generated cases per operation
LENIENT = [negative_data_rejection, positive_data_acceptance]
SEEN: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    """A child process: schemathesis (CPU-bound) and the server each get a core."""
    srv = SubprocessServer(tmp_path_factory.mktemp("fuzz") / "data", ServerOptions(tls=False)).start()
    yield srv
    srv.stop()
    print(f"\nschemathesis: {len(SEEN)} operations, {sum(SEEN.values())} cases, statuses {dict(SEEN_STATUS)}")


SEEN_STATUS: collections.Counter[int] = collections.Counter()


@pytest.fixture(scope="module")
def session():
    """One kept-alive connection, as agents use (a new one per case doubled the time); no proxy
    lookup in the environment per request (loopback only)."""
    with requests.Session() as s:
        s.trust_env = False
        yield s


# The document the server serves, built from the catalog at import (schemathesis' lazy fixture loader
# needs a pytest internal that pytest 9 no longer has); the first test checks it is the served one.
DOCUMENT = document("http://127.0.0.1")
# Event streams never end: a case reads the first event (``connected``) and hangs up.
schema = schemathesis.openapi.from_dict(DOCUMENT, config=SchemathesisConfig.from_dict({"max-stream-events": 1}))


def test_the_fuzzed_document_is_the_served_one(fuzz_server):
    served = requests.get(fuzz_server.http_url + "/api/schema/", timeout=5).json()
    assert {**served, "servers": DOCUMENT["servers"]} == DOCUMENT


@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
def test_every_operation_answers_as_documented(case, fuzz_server, session):
    response = case.call_and_validate(
        base_url=fuzz_server.http_url,
        session=session,
        headers={"Authorization": f"Token {fuzz_server.token}"},
        excluded_checks=LENIENT,
        timeout=10,
    )
    SEEN[case.operation.label] += 1
    SEEN_STATUS[response.status_code] += 1
    if response.status_code >= 400:  # every error is JSON in a DRF shape (or the counters' own)
        assert response.headers["content-type"][0].startswith("application/json"), response.text
        body = response.json()
        assert isinstance(body, dict) and body, body
        assert "detail" in body or "error" in body or all(isinstance(v, list) for v in body.values()), body


def test_the_fuzzed_server_is_still_healthy(fuzz_server):
    assert requests.get(fuzz_server.http_url + "/health/", timeout=5).json()["status"] == "ok"
