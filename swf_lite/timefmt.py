"""Time at the edges: parse ISO 8601 input (naive = server zone), print UTC with ``Z``.

Inside, every datetime is naive UTC.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.timezone.utc

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?\s*"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


def parse(value: str, zone: dt.tzinfo) -> dt.datetime:
    """ISO 8601 with ``T`` or space, optional seconds/fraction, ``Z`` or offset -> naive UTC.

    Raises ValueError on anything else.
    """
    m = _ISO.match(value.strip())
    if not m:
        raise ValueError(value)
    year, month, day, hour, minute, second, frac, tz = m.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    stamp = dt.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro)
    if tz is None:
        stamp = stamp.replace(tzinfo=zone)
    elif tz in ("Z", "z"):
        stamp = stamp.replace(tzinfo=UTC)
    else:
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        stamp = stamp.replace(tzinfo=dt.timezone(sign * offset))
    return stamp.astimezone(UTC).replace(tzinfo=None)


def iso(value: dt.datetime | None) -> str | None:
    """Naive UTC -> ``2026-03-31T23:22:52.123456Z``."""
    return None if value is None else value.isoformat(timespec="microseconds") + "Z"  # zero-pads years < 1000


def to_db(value: dt.datetime) -> str:
    """The stored text form: fixed width (zero-padded year, microseconds) so text order is time order."""
    return value.isoformat(sep=" ", timespec="microseconds")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC).replace(tzinfo=None)
