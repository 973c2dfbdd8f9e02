"""The pages: dashboard, one list and one detail page per resource, the workflows overview, the log
summary and the persistent state. Each view asks the service, formats rows with :mod:`render` and
renders a template; ``?fragment=<id>`` renders just one live region (the script refreshes regions
when the change stream says their resources changed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import bottle

from swf_lite import counters, timefmt
from swf_lite.catalog import BY_NAME, Filter, Resource
from swf_lite.clientenv import client_env
from swf_lite.config import BUNDLE_FILE
from swf_lite.context import Context
from swf_lite.errors import Invalid, NotFound
from swf_lite.pages import charts
from swf_lite.pages.render import STATIC, cell, detail_url, duration, escape, fk_links, label, page, parse_time, url
from swf_lite.pages.site import BY_RESOURCE, OVERVIEW, PAGES, RELATED, Page
from swf_lite.service import Page as Rows
from swf_lite.service import Service

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
RELATED_ROWS = 10
CHART_ROWS = 5000  # newest rows a detail page's chart reads: bounded work on any table size
DASHBOARD_CHART_ROWS = 2000  # the dashboard's pictures show recent activity (2 charts; renders < 50 ms)


class Views:
    """Page handlers over one context."""

    def __init__(self, ctx: Context, whoami: Any = None):
        self.ctx = ctx
        self.service: Service = ctx.service
        self.whoami = whoami or (lambda: None)  # the admin session's user, if any (set by the admin)

    # -- lists -----------------------------------------------------------------------------------

    def list_page(self, p: Page) -> bottle.HTTPResponse:
        r = p.r
        q = bottle.request.query
        params = {flt.param: q.getunicode(flt.param) or "" for flt in r.filters if flt.op != "search"}
        params = {k: v for k, v in params.items() if v}
        search = (q.getunicode("q") or "").strip()
        ordering = (q.getunicode("ordering") or "").strip()
        size = _int(q.getunicode("size"), PAGE_SIZE, 1, MAX_PAGE_SIZE)
        number = _int(q.getunicode("page"), 1, 1, 10**9)
        here = f"/{p.slug}/"
        try:
            rows = self.service.list(r, params, ordering=ordering, limit=size, offset=(number - 1) * size,
                                     search=search)  # fmt: skip
            problem = ""
        except Invalid as exc:
            rows, problem = Rows([], 0), "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.errors.items())
        state = {**params, "q": search, "ordering": ordering, "size": size if size != PAGE_SIZE else None}
        kw = self._table(r, rows, here, state, number, size)
        kw.update(title=p.title, here=here, active=bool(params or search))
        if q.getunicode("fragment") == "rows":  # a live refresh: no filter bar (its counts cost a scan)
            return page("rows", **kw)
        kw.update(description=r.description + (f" — {problem}" if problem else ""),
                  q=search, ordering=ordering, live=r.name, filters=self._filter_bar(r, params, search),
                  json_url=url(f"/api/{r.name}/", **params, search=search or None, ordering=ordering or None,
                               limit=size, offset=(number - 1) * size or None))  # fmt: skip
        kw["sections"] = [self._section(name, title, {}, "") for name, title in OVERVIEW.get(p.slug, ())]
        if kw["sections"]:
            kw["live"] = ",".join([r.name, *(s["resource"] for s in kw["sections"])])
        return page("list", **kw)

    def _section(self, resource: str, title: str, params: Mapping[str, str], search: str) -> dict[str, Any]:
        """A short list of ``resource`` (the newest rows first by its default order) with a link to all."""
        target = BY_NAME[resource]
        rows = self.service.list(target, params, limit=RELATED_ROWS, search=search)
        tp = BY_RESOURCE[target.name]
        table = self._table(target, rows, f"/{tp.slug}/", {**params, "q": search}, 1, RELATED_ROWS)
        return {
            "title": title,
            "all_url": url(f"/{tp.slug}/", **params, q=search or None),
            "resource": resource,
            **table,
        }

    def _table(self, r: Resource, rows: Rows, here: str, state: Mapping[str, Any], number: int,
               size: int) -> dict[str, Any]:  # fmt: skip
        """Columns (sortable), formatted rows and paging for a list of ``r``."""
        names = r.list_columns
        now = timefmt.utcnow()
        links = fk_links(self.service, r, rows.rows, names)
        p = BY_RESOURCE.get(r.name)
        current = str(state.get("ordering") or "")
        columns = []
        for name in names:
            desc = current == f"-{name}"
            asc = current == name
            flip = {**state, "ordering": name if not asc else f"-{name}", "page": None}
            columns.append(
                {
                    "label": label(name),
                    "arrow": " ↓" if desc else " ↑" if asc else "",
                    "aria": "descending" if desc else "ascending" if asc else "",
                    "url": url(here, **flip),
                }
            )
        out_rows = []
        for row in rows.rows:
            key = row[p.key_field] if p else row[r.pk.name]
            out_rows.append({
                "key": str(row[r.pk.name]),
                "url": detail_url(r.name, key),
                "cells": [cell(r.field(n), row.get(n), now, links.get(n)) for n in names],
            })  # fmt: skip
        total = rows.count or 0
        first = (number - 1) * size + 1 if out_rows else 0
        return {
            "columns": columns, "rows": out_rows, "total": total, "first": first,
            "last": first + len(out_rows) - 1 if out_rows else 0,
            "prev_url": url(here, **{**state, "page": number - 1 if number > 2 else None}) if number > 1 else None,
            "next_url": url(here, **{**state, "page": number + 1}) if number * size < total else None,
        }  # fmt: skip

    def _filter_bar(self, r: Resource, params: Mapping[str, str], search: str) -> list[dict[str, Any]]:
        out = []
        for flt in r.filters:
            if flt.op == "search":
                continue
            options = None
            f = _field_of(r, flt)
            if flt.op == "eq" and "." not in flt.path and f is not None and (f.choices or f.kind == "bool"):
                try:
                    options = self.service.value_counts(r, flt.path, params, search)
                except Invalid:
                    options = []
            hint = {"ge": "at least", "le": "at most"}.get(flt.op, "a,b,…")
            if f is not None and f.kind == "datetime":
                hint = "YYYY-MM-DDThh:mm"
            out.append({"param": flt.param, "label": label(flt.param), "value": params.get(flt.param, ""),
                        "options": options, "hint": hint})  # fmt: skip
        return out

    # -- details ---------------------------------------------------------------------------------

    def detail_page(self, p: Page, key: str) -> bottle.HTTPResponse:
        r = p.r
        row = self._find(p, key)
        if row is None:
            return page("notfound", 404, title="Not found", here=f"/{p.slug}/", what=p.title, key=key,
                        back=f"/{p.slug}/")  # fmt: skip
        now = timefmt.utcnow()
        links = fk_links(self.service, r, [row], [f.name for f in r.all_fields])
        fields_html = [(label(f.name), cell(f, row.get(f.name), now, links.get(f.name), full=True))
                       for f in r.all_fields]  # fmt: skip
        sections = []
        for rel in RELATED.get(r.name, ()):
            value = row.get(rel.source)
            if value is None:
                continue
            params = {rel.param: str(value)} if rel.param not in ("q", "") else {}
            if rel.window:
                start_name, end_name, span = rel.window
                start, end = parse_time(row.get(start_name)), parse_time(row.get(end_name)) if end_name else None
                if start is None:
                    continue
                if span:
                    start, end = start - dt.timedelta(seconds=span), start + dt.timedelta(seconds=span)
                params["start_time"] = timefmt.iso(start) or ""
                if end is not None:
                    params["end_time"] = timefmt.iso(end) or ""
            sections.append(self._section(rel.resource, rel.title, params, str(value) if rel.param == "q" else ""))
        if r.name == "workflow-executions":  # stages belong to the execution's STF workflows
            flows = self.service.list(BY_NAME["workflows"], {"execution_id": str(row["execution_id"])}, limit=200).rows
            if flows:
                ids = ",".join(str(w["workflow_id"]) for w in flows)
                sections.append(self._section("workflow-stages", "Stages", {"workflow": ids}, ""))
        extra = self._detail_extra(r, row, now)
        title = f"{p.title[:-1] if p.title.endswith('s') else p.title} {row.get(r.title)}"
        kw: dict[str, Any] = dict(title=title, here=f"/{p.slug}/", fields=fields_html, sections=sections, extra=extra,
                  json_url=f"/api/{r.name}/{row[r.pk.name]}/", back=f"/{p.slug}/", back_title=p.title,
                  live=",".join(sorted({r.name, *(s["resource"] for s in sections)})))  # fmt: skip
        if bottle.request.query.getunicode("fragment") == "detail":
            return page("detail_body", **kw)
        return page("detail", **kw)

    def _find(self, p: Page, key: str) -> dict[str, Any] | None:
        """The row a detail URL names: by the page's key field, else by the resource's title field."""
        r = p.r
        if p.key_field == r.pk.name:
            try:
                return self.service.get(r, key)
            except NotFound:
                pass
        for name in dict.fromkeys((p.key_field, r.title)):
            flt = next((f for f in r.filters if f.path == name and f.op == "eq"), None)
            if flt is not None:
                try:
                    rows = self.service.list(r, {flt.param: key}, limit=1).rows
                except Invalid:
                    continue
                if rows:
                    return rows[0]
        return None

    def _detail_extra(self, r: Resource, row: Mapping[str, Any], now: dt.datetime) -> list[str]:
        """Pictures and live facts some detail pages add (HTML, escaped)."""
        out = []
        if r.name == "runs":
            counts = self.service.per_minute(BY_NAME["stf-files"], "created_at", {"run": str(row["run_id"])},
                                             limit=CHART_ROWS)  # fmt: skip
            out.append(charts.rate_chart(f"STF files per minute, run {row['run_number']}", _times(counts)))
        if r.name == "workflow-executions" and row.get("start_time"):
            start = escape(row["start_time"])
            end = row.get("end_time")
            running = end is None and str(row.get("status")) in ("running", "pending")
            if end:
                seconds = ((parse_time(end) or now) - (parse_time(row["start_time"]) or now)).total_seconds()
                out.append(f'<p class="duration">Ran for <strong>{duration(seconds)}</strong>.</p>')
            else:
                seconds = (now - (parse_time(row["start_time"]) or now)).total_seconds()
                tick = f' data-since="{start}"' if running else ""
                out.append(f'<p class="duration">{"Running for" if running else "Started"} '
                           f'<strong{tick}>{duration(seconds)}</strong>{"" if running else " ago"}.</p>')  # fmt: skip
        if r.name == "systemagents":
            items = [(str(row["instance_name"]), _age(now, row.get("last_heartbeat")))]
            out.append(charts.freshness_chart("Heartbeat freshness", items,
                                              stale_after=self.service.stale_agent_seconds))  # fmt: skip
        return out

    # -- overview pages --------------------------------------------------------------------------

    def dashboard(self) -> bottle.HTTPResponse:
        """The overview; ``?fragment=overview`` / ``feed`` computes only that region (live refreshes)."""
        fragment = bottle.request.query.getunicode("fragment")
        kw: dict[str, Any] = {"title": "Dashboard", "here": "/", "live": "*"}
        if fragment != "overview":
            msgs = BY_NAME["workflow-messages"]
            kw["messages"] = self._table(msgs, self.service.list(msgs, limit=15), "/messages/", {}, 1, 15)
            if fragment == "feed":
                return page("dashboard_feed", **kw)
        kw.update(self._overview())
        if fragment == "overview":
            return page("dashboard_overview", **kw)
        user = self.whoami()
        return page("dashboard", **kw, user=user, env=self._client_env(user))

    def _overview(self) -> dict[str, Any]:
        s = self.service
        now = timefmt.utcnow()
        kinds = ("runs", "stf-files", "fastmon-files", "workflow-executions", "systemagents", "workflow-messages",
                 "logs")  # fmt: skip
        cards = [{"title": BY_RESOURCE[k].title, "count": s.count(BY_NAME[k]), "url": f"/{BY_RESOURCE[k].slug}/"}
                 for k in kinds]  # fmt: skip
        newest = {"runs": "-run_id", "stf-files": "-created_at", "fastmon-files": "-created_at",
                  "workflow-executions": "-start_time"}  # fmt: skip
        latest = {k: self._table(BY_NAME[k], s.list(BY_NAME[k], ordering=o, limit=5), f"/{BY_RESOURCE[k].slug}/",
                                 {"ordering": o}, 1, 5) for k, o in newest.items()}  # fmt: skip
        agents_r = BY_NAME["systemagents"]
        agents = s.list(agents_r, ordering="-last_heartbeat", limit=50).rows
        freshness = [(str(a["instance_name"]), _age(now, a["last_heartbeat"])) for a in agents]
        logs_r = BY_NAME["logs"]
        problems = self._table(
            logs_r, s.list(logs_r, {"min_level": "30"}, limit=8), "/logs/", {"min_level": "30"}, 1, 8
        )
        # charts read only the columns they draw, newest CHART_ROWS rows: bounded work on any table size
        files = _times(s.per_minute(BY_NAME["stf-files"], "created_at", limit=DASHBOARD_CHART_ROWS))
        by_level: dict[str, list[dt.datetime]] = {}
        for minute, level, n in s.per_minute(logs_r, "timestamp", group="levelname", limit=DASHBOARD_CHART_ROWS):
            by_level.setdefault(str(level), []).extend([minute] * n)
        known: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        levels = {k: by_level[k] for k in known if k in by_level}
        levels.update({k: v for k, v in by_level.items() if k not in levels})
        state = s.next_values()
        return dict(
            cards=cards, latest=latest, problems=problems,
            agents=self._table(agents_r, Rows(agents[:10], len(agents)), "/agents/", {}, 1, 10),
            counters=[(c.key.replace("_", " "), state[c.key]) for c in counters.COUNTERS],
            charts=[charts.rate_chart("STF files per minute", files),
                    charts.stacked_rate_chart("Log volume by level", levels),
                    charts.freshness_chart("Agent heartbeat freshness", freshness, stale_after=s.stale_agent_seconds)],
        )  # fmt: skip

    def _client_env(self, user: Any) -> list[str]:
        """The ``export`` lines for this server's bound URLs (the token only for a signed-in user)."""
        urls, settings = self.ctx.urls, self.ctx.settings
        token = user.token if user is not None else "<sign in to /admin/ to see your token>"
        bundle = settings.data_dir / BUNDLE_FILE if urls.get("https") else None
        env = client_env(urls.get("http", ""), urls.get("https"), token, bundle)
        return [f"export {k}={v}" for k, v in env.items()]

    def log_summary(self) -> bottle.HTTPResponse:
        summary = self.service.log_summary()
        now = timefmt.utcnow()
        rows = []
        levels: list[str] = []
        for app_name, instances in sorted(summary.items()):
            for instance, entry in sorted(instances.items()):
                for lv in entry["error_counts"]:
                    if lv not in levels:
                        levels.append(lv)
                rows.append({"app": app_name, "instance": instance, "counts": entry["error_counts"],
                             "link": url("/logs/", instance_name=instance, app_name=app_name),
                             "recent": [{**e, "when": cell(BY_NAME["logs"].field("timestamp"), e["timestamp"], now)}
                                        for e in entry["recent_errors"]]})  # fmt: skip
        order = ["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"]
        levels.sort(key=lambda v: order.index(v) if v in order else len(order))
        return page("summary", title="Log summary", here="/logs/summary/", rows=rows, levels=levels, live="logs",
                    fragment=None)  # fmt: skip

    def persistent_state(self) -> bottle.HTTPResponse:
        state = self.service.counters()
        nxt = self.service.next_values()
        now = timefmt.utcnow()
        time_field = BY_NAME["runs"].field("start_time")
        rows = [{"name": c.endpoint, "last": state[c.column], "next": nxt[c.key],
                 "when": cell(time_field, state[c.time_column], now)} for c in counters.COUNTERS]  # fmt: skip
        return page("state", title="Persistent state", here="/persistent-state/", rows=rows, live="persistent-state")


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(raw or default), low), high)
    except ValueError:
        return default


def _times(counts: list[tuple[dt.datetime, Any, int]]) -> list[dt.datetime]:
    """Per-minute counts as the event times a rate chart takes (each minute repeated, not parsed)."""
    return [minute for minute, _, n in counts for _ in range(n)]


def _age(now: dt.datetime, value: Any) -> float | None:
    """Seconds since a stored time (None: never)."""
    when = parse_time(value)
    return (now - when).total_seconds() if when else None


def _field_of(r: Resource, flt: Filter) -> Any:
    head = flt.path.split(".")[0]
    try:
        return r.field(head)
    except KeyError:
        return None


def mount(app: bottle.Bottle, ctx: Context, whoami: Any = None) -> Views:
    """Register the page routes (after the API's, which they never shadow)."""
    views = Views(ctx, whoami)
    app.route("/", "GET", views.dashboard)
    app.route("/logs/summary/", "GET", views.log_summary)
    app.route("/persistent-state/", "GET", views.persistent_state)
    for p in PAGES:
        app.route(f"/{p.slug}/", "GET", _bind(views.list_page, p))
        app.route(f"/{p.slug}/<key>/", "GET", _bind(views.detail_page, p))
    app.route("/static/<name>", "GET", static)
    return views


def _bind(method: Any, p: Page) -> Any:
    def handler(**kw: Any) -> Any:
        return method(p, **kw)

    handler.__name__ = f"{method.__name__}_{p.slug.replace('-', '_')}"
    return handler


def static(name: str) -> bottle.HTTPResponse:
    resp = bottle.static_file(name, root=str(STATIC))
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Cache-Control", "public, max-age=300")
    return resp


__all__ = ["Views", "mount"]
