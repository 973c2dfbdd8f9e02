"""The list fast path (``Store.client_rows``: stored values converted straight to what clients read)
gives exactly what ``fields.represent`` gives from the model's Python values, for every resource."""

from __future__ import annotations

import pytest

from swf_lite import fields
from swf_lite.catalog import RESOURCES


@pytest.fixture(scope="module")
def demo(tmp_path_factory, engine):
    with engine.serve(tmp_path_factory.mktemp("rows"), demo=True, tls=False) as srv:
        yield srv


@pytest.mark.parametrize("r", RESOURCES, ids=lambda r: r.name)
def test_client_rows_equal_the_represented_rows(demo, r):
    store = demo.store
    store.connect()
    query = store.model(r).select().order_by(store.model(r)._meta.primary_key)
    slow = [fields.represent(r, row) for row in query.dicts()]
    fast = store.client_rows(r, query)
    assert fast == slow
    assert [list(row) for row in fast] == [list(row) for row in slow]  # the same key order too


def test_the_demo_fills_the_resources_compared_above(demo):
    store = demo.store
    store.connect()
    filled = [r.name for r in RESOURCES if store.model(r).select().exists()]
    assert len(filled) >= 12, filled
