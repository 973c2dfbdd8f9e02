"""Per-kind field handling: input validation with DRF's wording, and output representation.

``clean`` turns a request body into values ready for the store or raises :class:`Invalid`
with a DRF-shaped error dict; ``represent`` turns a stored row into the response object.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from swf_lite import timefmt
from swf_lite.catalog import REQUIRED, F, Resource
from swf_lite.errors import Invalid

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
TRUE_VALUES = {"t", "y", "yes", "true", "on", "1", 1}
FALSE_VALUES = {"f", "n", "no", "false", "off", "0", 0}
_URL = re.compile(r"^(?:http|ftp)s?://[^\s/?#]+(?:[/?#]\S*)?$", re.IGNORECASE)
_DECIMAL_TAIL = re.compile(r"\.0*\s*$")
DATETIME_FORMAT_ERROR = (
    "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."
)


class FieldError(ValueError):
    """One field's value is wrong; the message is DRF's wording."""


def _integer(value: Any, bounds: tuple[int, int]) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise FieldError("A valid integer is required.")
    try:
        number = int(_DECIMAL_TAIL.sub("", str(value)))
    except ValueError:
        raise FieldError("A valid integer is required.") from None
    if number > bounds[1]:
        raise FieldError(f"Ensure this value is less than or equal to {bounds[1]}.")
    if number < bounds[0]:
        raise FieldError(f"Ensure this value is greater than or equal to {bounds[0]}.")
    return number


def _float(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
        raise FieldError("A valid number is required.") from None
    if isinstance(value, bool) or not math.isfinite(number):
        raise FieldError("A valid number is required.")
    return number


def _bool(value: Any) -> bool:
    key = value.lower() if isinstance(value, str) else value
    try:
        if key in TRUE_VALUES:
            return True
        if key in FALSE_VALUES:
            return False
    except TypeError:  # unhashable (list, dict)
        pass
    raise FieldError("Must be a valid boolean.")


NULL_CHARACTERS = "Null characters are not allowed."


def refuse_null(text: str) -> str:
    """DRF's ProhibitNullCharactersValidator, for values and filters alike (PostgreSQL text cannot hold NUL)."""
    if "\x00" in text:
        raise FieldError(NULL_CHARACTERS)
    return text


def _string(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise FieldError("Not a valid string.")
    return str(value)


def _datetime(value: Any, zone: dt.tzinfo) -> dt.datetime:
    if not isinstance(value, str):
        raise FieldError(DATETIME_FORMAT_ERROR)
    try:
        return timefmt.parse(value, zone)
    except (ValueError, OverflowError):
        raise FieldError(DATETIME_FORMAT_ERROR) from None


def _uuid(value: Any) -> uuid.UUID:
    try:
        return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        raise FieldError("Must be a valid UUID.") from None


def _json(value: Any) -> Any:
    """Any JSON value, as long as it can be written back out (NaN and Infinity cannot)."""
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        raise FieldError("Value must be valid JSON.") from None
    return value


def _ip(value: Any) -> str:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        raise FieldError("Enter a valid IPv4 or IPv6 address.") from None


def _url(value: Any) -> str:
    text = _string(value)
    if not _URL.match(text):
        raise FieldError("Enter a valid URL.")
    return text


Converter = Callable[[Any, dt.tzinfo], Any]
CONVERTERS: dict[str, Converter] = {
    "int": lambda value, zone: _integer(value, INT32),
    "int64": lambda value, zone: _integer(value, INT64),
    "float": lambda value, zone: _float(value),
    "bool": lambda value, zone: _bool(value),
    "datetime": _datetime,
    "uuid": lambda value, zone: _uuid(value),
    "ip": lambda value, zone: _ip(value),
    "json": lambda value, zone: _json(value),
    "url": lambda value, zone: _url(value),
}


def convert(f: F, value: Any, zone: dt.tzinfo) -> Any:
    """Coerce one non-null input value to its stored Python type (FieldError on failure)."""
    return CONVERTERS.get(f.kind, lambda value, zone: _string(value))(value, zone)  # str, text


def choice(f: F, raw: Any) -> Any:
    """A choice field's input matched by its text (DRF's ChoiceField: ``"40"`` selects ``40``)."""
    for option in f.choices or ():
        if str(option) == str(raw):
            return option
    raise FieldError(f'"{raw}" is not a valid choice.')


def check(f: F, raw: Any, value: Any) -> None:
    """Blank, length and choice rules on a converted value."""
    if isinstance(value, str):
        refuse_null(value)
        if not value.strip() and not f.allow_blank:
            raise FieldError("This field may not be blank.")
        if f.max_length and len(value) > f.max_length:
            raise FieldError(f"Ensure this field has no more than {f.max_length} characters.")
    if f.choices is not None and value not in f.choices:
        raise FieldError(f'"{raw}" is not a valid choice.')


FkResolver = Callable[[F, Any], Any]


def clean(
    r: Resource,
    data: dict[str, Any],
    *,
    zone: dt.tzinfo,
    resolve_fk: FkResolver,
    creating: bool,
    partial: bool = False,
    strict_choices: bool = True,
) -> dict[str, Any]:
    """Validate ``data`` against ``r``: unknown and read-only keys are ignored; on create the
    defaults are filled in. Raises :class:`Invalid` with every field error at once."""
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for f in r.all_fields if creating else r.fields:
        if f.read_only:
            continue
        if f.name not in data:
            if partial:
                continue
            if f.required:
                errors[f.name] = ["This field is required."]
            elif creating:
                default = f.default
                if default is REQUIRED:
                    default = None
                elif isinstance(default, (dict, list)):  # each row gets its own
                    default = copy.deepcopy(default)
                values[f.name] = default
            continue
        raw = data[f.name]
        if raw is None:
            if f.null:
                values[f.name] = None
            else:
                errors[f.name] = ["This field may not be null."]
            continue
        try:
            if f.kind == "fk":
                value = resolve_fk(f, raw)
            elif f.choices is not None and strict_choices:
                value = choice(f, raw)  # DRF validates choices before type and length
            else:
                value = convert(f, raw, zone)
            check(f if strict_choices else _without_choices(f), raw, value)
        except FieldError as exc:
            errors[f.name] = [str(exc)]
            continue
        values[f.name] = value
    if errors:
        raise Invalid(errors)
    return values


_NO_CHOICES: dict[int, F] = {}


def _without_choices(f: F) -> F:
    """``f`` with its choices lifted (lenient writes); made once per field (catalog fields live forever)."""
    lifted = _NO_CHOICES.get(id(f))
    if lifted is None:
        lifted = _NO_CHOICES[id(f)] = replace(f, choices=None)
    return lifted


def represent(r: Resource, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row (peewee ``.dicts()`` or clean values) as the JSON object clients read."""
    out: dict[str, Any] = {}
    for f in r.all_fields:
        value = row.get(f.name)
        if value is not None:
            if isinstance(value, dt.datetime):
                value = timefmt.iso(value)
            elif isinstance(value, uuid.UUID):
                value = str(value)
            elif f.kind == "bool":
                value = bool(value)
        out[f.name] = value
    return out
