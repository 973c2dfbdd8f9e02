"""Domain errors: what the service raises, whatever door (API, pages, MCP) called it.

Each door turns them into its own shape; the HTTP API answers DRF's: :class:`Invalid` -> 400 with
the field errors, :class:`NotFound` -> 404 ``{"detail": ...}``, :class:`Unavailable` -> 503.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of the errors a caller of the service is expected to handle."""


class Invalid(DomainError):
    """Validation failed; ``errors`` is DRF-shaped: ``{field: [messages]}`` (``non_field_errors`` for
    rules across fields)."""

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__(errors)
        self.errors = errors


class NotFound(DomainError):
    """No row has that key. ``model`` names the resource for DRF's wording; None means the key itself
    could not be a key (wrong type), which DRF words as a plain "Not found."."""

    def __init__(self, model: str | None = None):
        self.model = model
        super().__init__(self.detail)

    @property
    def detail(self) -> str:
        return f"No {self.model} matches the given query." if self.model else "Not found."


class Exhausted(DomainError):
    """A counter has handed out its last value; it never wraps around or repeats."""


class Unavailable(DomainError):
    """The store cannot serve the request now (locked, gone, out of connections): retry later."""
