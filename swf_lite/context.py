"""The :class:`Context`: what one running swf-lite is made of, built once and shared by every door."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from swf_lite.catalog import BY_NAME
from swf_lite.config import Settings
from swf_lite.db import Store
from swf_lite.errors import DomainError
from swf_lite.events import Bus
from swf_lite.feed import Feed
from swf_lite.service import Service


class Context:
    """Settings, the store, the change bus, the service over them, the stop event and reset hooks."""

    def __init__(self, settings: Settings, store: Store):
        self.settings = settings
        self.store = store
        self.stopping = threading.Event()
        self.bus = Bus(
            settings.sse_max_clients, settings.sse_queue, self.stopping, limits={"changes": settings.sse_page_clients}
        )  # pages never take the agents' slots
        self.service = Service(store, self.bus, zone=settings.zone, stale_agent_seconds=settings.stale_agent_seconds)
        self.on_reset: list[Callable[[], None]] = []  # run after a reset committed (from any thread)
        self.urls: dict[str, str] = {}  # "http"/"https" -> the bound URL (set by the server once bound)
        self.feed: Feed | None = None
        self.bridge: Any = None  # swf_lite.bridge.Bridge with --stomp (the server starts it)
        if store.dialect.notifies:  # several processes may share this database: hear every commit
            self.feed = Feed(settings.db_url, self.bus, self._reload, on_remote_reset=self._run_reset_hooks)
            self.service.feed = self.feed

    def start(self) -> Context:
        """Start listening for committed changes (before any door opens)."""
        if self.feed is not None:
            self.feed.start()
        return self

    def sync(self) -> None:
        """Return once the bus has published every change committed so far (its publishing thread has
        caught up; when processes share a database, after a round trip through it)."""
        self.bus.flush()
        if self.feed is not None:
            self.store.connect()
            try:
                self.feed.sync(self.store.db)
            finally:
                self.store.release()

    def close(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    def _reload(self, resource: str, pk: Any) -> dict[str, Any] | None:
        try:
            return self.service.get(BY_NAME[resource], pk)
        except (KeyError, DomainError):
            return None
        finally:
            self.store.release()

    def reset(self, next_values: Mapping[str, int] | None = None) -> None:
        """Empty every table, restart the counters (or set them), then run the reset hooks (e.g.
        re-create the subscriber rows of streams still open)."""
        self.service.reset(next_values)
        self.sync()  # this process's bus has heard the reset (and cleared its queues) before we go on
        self._run_reset_hooks()

    def _run_reset_hooks(self) -> None:
        for hook in self.on_reset:
            hook()
