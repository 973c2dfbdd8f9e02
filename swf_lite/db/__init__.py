"""Storage: the :class:`Store` (tables, statements), the models derived from the catalog and every
engine-specific fact (:mod:`swf_lite.db.dialect`). Nothing here knows HTTP."""

from swf_lite.db.store import START_VALUES, Store, UniqueViolation

__all__ = ["START_VALUES", "Store", "UniqueViolation"]
