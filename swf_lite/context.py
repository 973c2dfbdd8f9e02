"""The :class:`Context`: what one running swf-lite is made of, built once and shared by every door."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from swf_lite.config import Settings
from swf_lite.db import Store
from swf_lite.events import Bus
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

    def reset(self, next_values: Mapping[str, int] | None = None) -> None:
        """Empty every table, restart the counters (or set them), then run the reset hooks (e.g.
        re-create the subscriber rows of streams still open)."""
        self.service.reset(next_values)
        for hook in self.on_reset:
            hook()
