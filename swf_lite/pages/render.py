"""Turning rows into HTML: templates (bottle's SimpleTemplate, ``{{x}}`` always escaped), the cell
formats (times in UTC with their age, links for foreign keys, JSON, booleans), and the response with
the pages' security headers. Every string that comes from stored data passes through ``escape``."""

from __future__ import annotations

import datetime as dt
import html
import json
import logging
import urllib.parse
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import bottle

from swf_lite import __version__
from swf_lite.catalog import BY_NAME, F, Resource
from swf_lite.pages.site import BY_RESOURCE, EXTRA_NAV, PAGES

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
TEXT_PREVIEW = 120  # characters of long text shown in a table cell

# No inline script or style anywhere: the stylesheet and the script are files under /static/.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def escape(value: Any) -> str:
    return html.escape(str(value), quote=True)


class Templates:
    """Compiled once, rendered many times."""

    def __init__(self, directory: Path = TEMPLATES):
        self.lookup = [str(directory)]
        self._cache: dict[str, bottle.SimpleTemplate] = {}

    def render(self, name: str, **kw: Any) -> str:
        tpl = self._cache.get(name)
        if tpl is None:
            tpl = self._cache[name] = bottle.SimpleTemplate(name=name, lookup=self.lookup)
        kw.setdefault("nav", NAV)
        kw.setdefault("version", __version__)
        kw.setdefault("user", None)
        kw.setdefault("live", "")
        return str(tpl.render(**kw))


TEMPLATE = Templates()
NAV = tuple((f"/{p.slug}/", p.title, p.nav) for p in PAGES) + tuple((url, title, False) for url, title in EXTRA_NAV)


def page(name: str, status: int = 200, **kw: Any) -> bottle.HTTPResponse:
    """A whole page (or, with ``fragment``, one live region of it) with the security headers."""
    body = TEMPLATE.render(name, **kw).encode()
    return respond(body, status)


def error_page(err: bottle.HTTPError) -> bytes:
    """bottle's own errors on a page path (no page here, wrong method, crash) as a page."""
    if err.status_code == 500 and err.exception is not None:
        logging.getLogger("swf_lite.pages").error("unhandled: %s", err.traceback)
    for name, value in SECURITY_HEADERS.items():
        bottle.response.set_header(name, value)
    bottle.response.content_type = "text/html; charset=utf-8"
    text = {404: "There is no page at this address.", 405: "This page does not take that method."}.get(
        err.status_code, "Something went wrong; the server log has the details."
    )
    return TEMPLATE.render(
        "message", title=err.status_line, here="", text=text, back=("/", "Go to the dashboard")
    ).encode()  # not the admin: any visitor lands here


def respond(body: bytes, status: int = 200, content_type: str = "text/html; charset=utf-8") -> bottle.HTTPResponse:
    headers = {"Content-Type": content_type, "Content-Length": str(len(body)), **SECURITY_HEADERS}
    return bottle.HTTPResponse(body=body, status=status, headers=headers)


# -- values ------------------------------------------------------------------------------------------


def parse_time(value: str | None) -> dt.datetime | None:
    """An ISO time as the API writes it (``…Z``) back to naive UTC."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.rstrip("Z")).replace(tzinfo=None)


def duration(seconds: float, coarse: bool = False) -> str:
    """``1 h 5 min`` (``coarse``: the largest unit only, ``1 h``; days from 24 h on)."""
    s = int(max(seconds, 0))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min" + ("" if coarse else f" {s % 60} s")
    if s < 86400 or not coarse:
        return f"{s // 3600} h" + ("" if coarse else f" {s % 3600 // 60} min")
    return f"{s // 86400} d"


def age(seconds: float) -> str:
    """``3 s ago`` style (the script keeps it ticking with the same units)."""
    return duration(seconds, coarse=True) + " ago"


def time_html(value: str | None, now: dt.datetime) -> str:
    """A stored time: UTC text plus its age (``data-t`` lets the script update the age live)."""
    when = parse_time(value)
    if when is None:
        return '<span class="null">—</span>'
    iso = escape(value)
    text = when.strftime("%Y-%m-%d %H:%M:%S")
    return (f'<time datetime="{iso}" title="{iso}">{text}</time> '
            f'<span class="ago" data-t="{iso}">{age((now - when).total_seconds())}</span>')  # fmt: skip


def url(path: str, **query: Any) -> str:
    """``path`` with a query (None values left out)."""
    items = [(k, str(v)) for k, v in query.items() if v is not None and v != ""]
    return path + ("?" + urllib.parse.urlencode(items) if items else "")


def detail_url(resource: str, key: Any) -> str | None:
    p = BY_RESOURCE.get(resource)
    return f"/{p.slug}/{urllib.parse.quote(str(key), safe='')}/" if p else None


def short(text: str, limit: int = TEXT_PREVIEW) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_text(value: Any, pretty: bool = False) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2 if pretty else None, sort_keys=pretty)


def cell(f: F, value: Any, now: dt.datetime, links: Mapping[Any, tuple[str, str]] | None = None,
         full: bool = False) -> str:  # fmt: skip
    """One value as HTML. ``links`` maps a foreign key value to (url, label)."""
    if value is None:
        return '<span class="null">—</span>'
    if f.kind == "datetime":
        return time_html(value, now)
    if f.kind == "bool":
        return '<span class="yes">yes</span>' if value else '<span class="no">no</span>'
    if f.kind == "fk" and links is not None and value in links:
        href, label = links[value]
        return f'<a href="{escape(href)}">{escape(label)}</a>'
    if f.kind == "json":
        text = json_text(value, pretty=full)
        return f"<pre class=json>{escape(text)}</pre>" if full else f"<code>{escape(short(text))}</code>"
    if f.kind == "url":
        return f'<a href="{escape(value)}" rel="noopener noreferrer">{escape(short(str(value)))}</a>'
    if f.choices is not None or f.name in ("status", "levelname", "operational_state", "current_status"):
        return f'<span class="badge b-{escape(str(value).lower())}">{escape(value)}</span>'
    text = str(value)
    if full or len(text) <= TEXT_PREVIEW:
        return escape(text)
    return f'<span title="{escape(short(text, 2000))}">{escape(short(text))}</span>'


def fk_links(service: Any, r: Resource, rows: Iterable[Mapping[str, Any]], names: Iterable[str]) -> dict[str, dict]:
    """For each foreign-key column among ``names``: {value: (detail url, label)}, one query per column."""
    out: dict[str, dict] = {}
    rows = list(rows)
    for name in names:
        f = r.field(name)
        if f.kind != "fk":
            continue
        parent = BY_NAME[str(f.to)]
        page_ = BY_RESOURCE.get(parent.name)
        values = sorted({row[name] for row in rows if row.get(name) is not None}, key=str)
        if not values or page_ is None:
            continue
        key_name = f.to_field or parent.pk.name
        param = next((flt.param for flt in parent.filters if flt.path == key_name), None)
        if param is None:  # keyed by the primary key: fetch each (a page has few distinct parents)
            found = [service.get(parent, v) for v in values[:100]]
        else:
            found = service.list(parent, {param: ",".join(map(str, values))}).rows
        links = {}
        for row in found:
            label = row.get(parent.title)
            links[row[key_name]] = (detail_url(parent.name, row[page_.key_field]) or "#", str(label))
        out[name] = links
    return out


def label(name: str) -> str:
    """A column heading: ``file_size_bytes`` -> ``file size bytes``."""
    return name.replace("_", " ")
