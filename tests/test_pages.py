"""The web interface over real sockets (plain HTTP and HTTPS), read as a browser would get it but
without one: every page answers HTML with the security headers and CSP-safe markup, stored markup
is shown escaped, list pages agree with the API, live fragments, no secrets for anonymous users,
the admin's sessions, CSRF and validation, and bounded paging.

One server for the module, emptied before each test (``server.ctx.reset()``); users and admin
sessions survive a reset, so each test that needs a user makes its own."""

from __future__ import annotations

import datetime as dt
import html
import html.parser
import re
import urllib.parse
import uuid
from typing import Any

import pytest
import requests
from api_helpers import shared_server

from swf_lite import auth, seeding
from swf_lite.catalog import BY_NAME
from swf_lite.pages.site import PAGES, Page
from swf_lite.server import SwfLiteServer

EVIL_SCRIPT = "<script>alert(1)</script>"
EVIL_ATTR = '"><img src=x onerror=alert(1)>'
RAW = ("<script>alert(1)</script>", "<img src=x onerror=alert(1)>")  # what must never reach a page
ESCAPED = ("&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(1)&gt;")
EVIL_AGENT = f"agent{EVIL_ATTR}{EVIL_SCRIPT}"
LEVELS = ((10, "DEBUG"), (20, "INFO"), (30, "WARNING"), (40, "ERROR"), (50, "CRITICAL"))
T0 = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
INVALID = (200, 400)  # a form shown again with its errors (Django's admin answers 200)


# -- server and clients ----------------------------------------------------------------------------


module_server, server = shared_server()


@pytest.fixture
def demo(server):
    """The demo data (every resource but AI memory) plus one AI-memory turn."""
    seeding.load_file(server.ctx.service, seeding.demo_path())
    server.ctx.service.create(
        BY_NAME["ai-memory"], {"username": "alice", "content": "remember the run", "role": "user"}
    )
    return server


class Browser:
    """A requests session that never follows redirects, against one base URL."""

    def __init__(self, base: str, verify: Any = True):
        self.base = base
        self.verify = verify
        self.session = requests.Session()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.session.get(self.base + path, allow_redirects=False, timeout=20, verify=self.verify, **kw)

    def post(self, path: str, data: Any = None, **kw: Any) -> requests.Response:
        return self.session.post(
            self.base + path, data=data, allow_redirects=False, timeout=20, verify=self.verify, **kw
        )

    def close(self) -> None:
        self.session.close()


def browser(server: SwfLiteServer, scheme: str = "http") -> Browser:
    if scheme == "https":
        return Browser(server.https_url, str(server.ca_bundle))
    return Browser(server.http_url)


@pytest.fixture
def web(server):
    b = browser(server)
    yield b
    b.close()


def api_json(server: SwfLiteServer, path: str, **params: Any) -> Any:
    resp = requests.get(server.http_url + path, params=params, timeout=20, allow_redirects=False)
    assert resp.status_code == 200, (path, params, resp.status_code, resp.text[:300])
    return resp.json()


def token_api(server: SwfLiteServer, method: str, path: str, **kw: Any) -> requests.Response:
    headers = {"Authorization": f"Token {server.token}"}
    return requests.request(method, server.http_url + path, headers=headers, timeout=20, allow_redirects=False, **kw)


# -- reading pages ---------------------------------------------------------------------------------


class Doc(html.parser.HTMLParser):
    """What the checks need from a page: every element with its attributes, the text of every
    ``<script>``, the options of every ``<select>`` and what each form would submit as it stands."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, Any]]] = []
        self.scripts: list[list[Any]] = []  # [attrs, text]
        self.options: dict[str, list[list[Any]]] = {}  # select name -> [value, text, selected]
        self._script: list[Any] | None = None
        self._select: str | None = None
        self._option: list[Any] | None = None
        self.forms: dict[str, dict[str, str]] = {}  # action -> {name: value}
        self._form: dict[str, str] | None = None
        self._textarea: str | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Any]]) -> None:
        a = dict(attrs)
        self.elements.append((tag, a))
        if tag == "script":
            self._script = [a, ""]
            self.scripts.append(self._script)
        elif tag == "select":
            self._select = a.get("name") or ""
            self.options[self._select] = []
        elif tag == "option" and self._select is not None:
            self._option = [a.get("value") or "", "", "selected" in a]
            self.options[self._select].append(self._option)
        elif tag == "form":
            self._form = self.forms.setdefault(a.get("action") or "", {})
        elif tag == "input" and self._form is not None and a.get("name"):
            kind = a.get("type") or "text"
            if kind == "checkbox":
                if "checked" in a:
                    self._form[a["name"]] = "on"
            elif kind not in ("submit", "button"):
                self._form[a["name"]] = a.get("value") or ""
        elif tag == "textarea" and self._form is not None:
            self._textarea = a.get("name") or ""
            self._form[self._textarea] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._script = None
        elif tag == "select":
            if self._form is not None and self._select:
                options = self.options[self._select]
                chosen = [o for o in options if o[2]] or options[:1]
                if chosen:
                    self._form[self._select] = chosen[0][0]
            self._select = None
        elif tag == "option":
            self._option = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._form = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._script[1] += data
        if self._option is not None:
            self._option[1] += data
        if self._textarea is not None and self._form is not None:
            self._form[self._textarea] += data

    def attrs(self, tag: str) -> list[dict[str, Any]]:
        return [a for t, a in self.elements if t == tag]


def csp_problems(text: str) -> list[str]:
    """What the pages' Content-Security-Policy would block (or what would run injected code)."""
    doc = Doc(text)
    out = []
    for attrs, body in doc.scripts:
        if body.strip():
            out.append(f"inline script: {body.strip()[:80]!r}")
        if not attrs.get("src"):
            out.append(f"script without src: {attrs}")
    for tag, a in doc.elements:
        if tag == "style":
            out.append("<style> element")
        for name, value in a.items():
            if name == "style":
                out.append(f"<{tag} style={value!r}>")
            if name.startswith("on"):
                out.append(f"<{tag} {name}={value!r}>")
            if name in ("href", "src", "action") and str(value or "").strip().lower().startswith("javascript:"):
                out.append(f"<{tag} {name}={value!r}>")
    return out


def assert_html(resp: requests.Response, status: int | tuple[int, ...] = 200) -> str:
    """Status (one or any of several), HTML type, the security headers and CSP-safe markup; returns the text."""
    where = f"{resp.request.method} {resp.url}"
    wanted = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in wanted, f"{where}: {resp.status_code} {resp.text[:500]}"
    assert resp.headers["Content-Type"].startswith("text/html"), where
    csp = resp.headers.get("Content-Security-Policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == ["'none'"], (where, csp)
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, (where, csp)
    assert "script-src" in directives or "default-src" in directives, (where, csp)
    assert resp.headers.get("X-Content-Type-Options") == "nosniff", where
    problems = csp_problems(resp.text)
    assert not problems, f"{where}: {problems}"
    return resp.text


def rows_region(text: str) -> str:
    """A list page's own rows (after the overview sections some list pages show above them)."""
    at = text.find('id="rows"')
    return text if at < 0 else text[at:]


def row_keys(text: str) -> list[str]:
    return [a["data-key"] for a in Doc(rows_region(text)).attrs("tr") if "data-key" in a]


def shown_total(text: str) -> int:
    found = re.search(r"Rows [\d,]+–[\d,]+ of ([\d,]+)", rows_region(text))
    if found is None:
        assert "No rows" in rows_region(text)
        return 0
    return int(found.group(1).replace(",", ""))


def shown_range(text: str) -> tuple[int, ...]:
    """(first, last, total) of "Rows 1–50 of 2,000"."""
    found = re.search(r"Rows ([\d,]+)–([\d,]+) of ([\d,]+)", rows_region(text))
    assert found, "no row count"
    return tuple(int(g.replace(",", "")) for g in found.groups())


def hidden(text: str, name: str) -> str:
    found = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)"', text)
    assert found, f"no hidden {name} in the page"
    return html.unescape(found.group(1))


def field_errors(text: str) -> dict[str, list[str]]:
    """The admin form's error lists, by field."""
    out = {}
    for name, body in re.findall(r'<ul class="errorlist" id="e-([\w-]+)">(.*?)</ul>', text, re.S):
        out[name] = [html.unescape(li) for li in re.findall(r"<li>(.*?)</li>", body, re.S)]
    return out


def set_cookies(resp: requests.Response) -> dict[str, dict[str, str]]:
    """Every Set-Cookie of a response: name -> {"value", attribute (lower case) -> value}."""
    out = {}
    for line in resp.raw.headers.getlist("Set-Cookie"):
        first, *attrs = [part.strip() for part in line.split(";")]
        name, _, value = first.partition("=")
        cookie = {"value": value}
        for attr in attrs:
            key, _, val = attr.partition("=")
            cookie[key.lower()] = val
        out[name] = cookie
    return out


def detail_path(p: Page, row: dict[str, Any]) -> str:
    return f"/{p.slug}/{urllib.parse.quote(str(row[p.key_field]), safe='')}/"


def every_page(server: SwfLiteServer) -> list[str]:
    """Every page and live fragment: the dashboard, each list and a detail of each (data needed)."""
    paths = ["/", "/?fragment=overview", "/?fragment=feed", "/logs/summary/", "/persistent-state/", "/admin/login/"]
    for p in PAGES:
        rows = server.ctx.service.list(p.r, limit=1).rows
        assert rows, f"no {p.resource} to show"
        paths += [f"/{p.slug}/", f"/{p.slug}/?fragment=rows", detail_path(p, rows[0])]
        paths.append(detail_path(p, rows[0]) + "?fragment=detail")
    return paths


# -- data ------------------------------------------------------------------------------------------


def add_logs(server: SwfLiteServer, n: int, start: int = 0) -> None:
    """``n`` log records with varied levels, apps, instances and line numbers (one transaction);
    every seventh message holds the word ``needle``."""
    service = server.ctx.service
    logs = BY_NAME["logs"]
    with service.transaction():
        for i in range(start, start + n):
            level, levelname = LEVELS[i % 5] if i % 3 else (20, "INFO")
            service.create(
                logs,
                {
                    "app_name": f"app-{i % 3}",
                    "instance_name": f"agent-{i % 4}",
                    "timestamp": (T0 + dt.timedelta(minutes=i)).isoformat(),
                    "level": level,
                    "levelname": levelname,
                    "message": f"record {i}" + (" with a needle" if i % 7 == 0 else ""),
                    "module": "mod",
                    "funcname": "work",
                    "lineno": (i * 37) % 101,
                    "process": 1,
                    "thread": 2,
                },
            )


def add_evil(server: SwfLiteServer) -> dict[str, Any]:
    """Records whose strings are markup: a log, an agent, a message, a run."""
    log_body = {
        "app_name": "app",
        "instance_name": EVIL_AGENT,
        "timestamp": "2026-03-31T12:00:00",
        "level": 40,
        "levelname": "ERROR",
        "message": f"failed: {EVIL_SCRIPT} {EVIL_ATTR}",
        "module": "m",
        "funcname": "f",
        "lineno": 1,
        "process": 1,
        "thread": 1,
    }
    log = requests.post(server.http_url + "/api/logs/", json=log_body, timeout=10).json()
    agent = token_api(server, "POST", "/api/systemagents/heartbeat/", json={"instance_name": EVIL_AGENT}).json()
    message = token_api(
        server,
        "POST",
        "/api/workflow-messages/",
        json={
            "message_type": "stf_gen",
            "sender_agent": EVIL_AGENT,
            "message_content": {"note": EVIL_SCRIPT, "x": EVIL_ATTR},
        },
    ).json()
    run = token_api(
        server,
        "POST",
        "/api/runs/",
        json={
            "run_number": 100010,
            "start_time": "2026-03-31T12:00:00Z",
            "run_conditions": {"note": EVIL_SCRIPT, "x": EVIL_ATTR},
        },
    ).json()
    return {"log": log, "agent": agent, "message": message, "run": run}


# -- every page ------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_every_page_is_html_with_the_security_headers(demo, scheme):
    with browser(demo, scheme) as b:
        paths = every_page(demo)
        assert len(paths) == 6 + 4 * len(PAGES)
        for path in paths:
            text = assert_html(b.get(path))
            if "fragment=" not in path:
                assert text.lstrip().lower().startswith("<!doctype html>"), path
                assert [a.get("src") for a in Doc(text).attrs("script")] == ["/static/app.js"], path


def test_lists_and_details_show_the_data(demo, web):
    for p in PAGES:
        api_rows = demo.ctx.service.list(p.r, limit=50).rows
        text = assert_html(web.get(f"/{p.slug}/"))
        assert row_keys(text) == [str(r[p.r.pk.name]) for r in api_rows], p.slug
        assert shown_total(text) == demo.ctx.service.count(p.r), p.slug
        detail = assert_html(web.get(detail_path(p, api_rows[0])))
        assert f'href="/api/{p.resource}/{api_rows[0][p.r.pk.name]}/"' in detail, p.slug


def test_static_files_are_served_with_nosniff(web):
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        resp = web.get(f"/static/{name}")
        assert resp.status_code == 200 and kind in resp.headers["Content-Type"], name
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/static/..%2fviews.py", "/static/%2e%2e/views.py", "/static/nope.js", "/static/../pages/views.py"):
        resp = web.get(path)
        assert resp.status_code in (301, 404), path  # never the file (urllib3 folds "..": a page redirect)
        assert "import" not in resp.text, path


def test_a_page_without_its_slash_redirects(web):
    for path, target in (
        ("/runs", "/runs/"),
        ("/runs?run_number=5", "/runs/?run_number=5"),
        ("/logs/summary", "/logs/summary/"),
        ("/admin", "/admin/"),
        ("/runs/100010", "/runs/100010/"),
    ):
        resp = web.get(path)
        assert resp.status_code in (301, 308), path
        assert resp.headers["Location"] == target, path


def test_json_paths_are_never_redirected_or_html(server, web):
    token_api(server, "POST", "/api/runs/", json={"run_number": 7, "start_time": "2026-03-31T12:00:00Z"})
    for path in ("/api/runs", "/api/runs/", "/api/runs?run_number=7"):
        resp = web.get(path)
        assert resp.status_code == 200, path
        assert resp.headers["Content-Type"].startswith("application/json"), path
        assert [r["run_number"] for r in resp.json()] == [7], path
    resp = web.get("/api/runs?run_number=abc")
    assert (resp.status_code, resp.json()) == (400, {"run_number": ["Enter a number."]})
    resp = web.get("/api/no-such-resource/")
    assert (resp.status_code, resp.json()) == (404, {"detail": "Not found."})


@pytest.mark.parametrize(
    "path",
    [
        "/runs/999999/",
        "/runs/abc/",
        "/stf-files/00000000-0000-0000-0000-000000000000/",
        "/agents/nobody/",
        "/logs/0/",
        "/namespaces/none/",
        "/messages/x/",
    ],
)
def test_an_unknown_detail_key_is_a_404_page(demo, web, path):
    text = assert_html(web.get(path), 404)
    assert "Not found" in text
    assert '<a href="/' + path.split("/")[1] + '/">' in text  # back to the list


def test_an_unknown_page_is_a_404_html_page(web):
    resp = web.get("/no-such-page/")
    assert resp.status_code == 404
    assert resp.headers["Content-Type"].startswith("text/html")
    assert not csp_problems(resp.text)
    assert '<a href="/">Go to the dashboard</a>' in resp.text and "Back to the admin" not in resp.text


def test_row_keys_are_the_stored_keys(server, web):
    """``tr[data-key]`` is the primary key as stored (the live script compares it with the change
    stream's pk), for keys with characters HTML escapes too."""
    key = "ns&<one>"
    server.ctx.service.create(BY_NAME["namespaces"], {"name": key, "owner": "alice"})
    text = assert_html(web.get("/namespaces/"))
    assert row_keys(text) == [key]
    assert "ns&amp;&lt;one&gt;" in text and "&amp;amp;" not in text
    assert_html(web.get(f"/namespaces/{urllib.parse.quote(key, safe='')}/"))


# -- markup in stored strings --------------------------------------------------------------------


def assert_no_raw_markup(text: str, path: str) -> None:
    """None of the hostile strings reached the page unescaped."""
    for raw in RAW:
        assert raw not in text, (path, raw)


def test_stored_markup_is_shown_escaped(server, web):
    made = add_evil(server)
    log_id, agent_id = made["log"]["id"], made["agent"]["id"]
    pages = [
        "/",
        "/?fragment=overview",
        "/?fragment=feed",
        "/logs/",
        "/logs/?fragment=rows",
        f"/logs/{log_id}/",
        "/logs/summary/",
        "/agents/",
        f"/agents/{agent_id}/",
        "/messages/",
        f"/messages/{made['message']['message_id']}/",
        "/runs/",
        "/runs/100010/",
        "/logs/?" + urllib.parse.urlencode({"instance_name": EVIL_AGENT}),
        "/logs/?" + urllib.parse.urlencode({"q": EVIL_SCRIPT}),
    ]
    for path in pages:
        text = assert_html(web.get(path))
        assert_no_raw_markup(text, path)
        assert any(e in text for e in ESCAPED), path
        assert not Doc(text).attrs("img"), path
    # the filtered lists found the records
    assert row_keys(web.get("/logs/?" + urllib.parse.urlencode({"instance_name": EVIL_AGENT})).text) == [str(log_id)]
    assert row_keys(web.get("/logs/?" + urllib.parse.urlencode({"q": EVIL_SCRIPT})).text) == [str(log_id)]


def test_reflected_markup_is_escaped(server, web):
    """Query values and URL keys a page echoes back."""
    cases = [
        ("/runs/?" + urllib.parse.urlencode({"run_number": EVIL_ATTR}), 200),
        ("/logs/?" + urllib.parse.urlencode({"q": EVIL_ATTR, "ordering": EVIL_SCRIPT}), 200),
        ("/logs/?" + urllib.parse.urlencode({"start_time": EVIL_ATTR, "level": EVIL_SCRIPT}), 200),
        ("/runs/" + urllib.parse.quote(EVIL_ATTR, safe="") + "/", 404),
        ("/admin/login/?" + urllib.parse.urlencode({"next": "/" + EVIL_ATTR + EVIL_SCRIPT}), 200),
    ]
    for path, status in cases:
        text = assert_html(web.get(path), status)
        assert_no_raw_markup(text, path)
        assert not Doc(text).attrs("img"), path


def test_stored_markup_is_escaped_in_the_admin(server):
    made = add_evil(server)
    evil_user = f"u{EVIL_ATTR}"
    auth.get_or_create_token(server.store, evil_user)
    with signed_in(server) as b:
        pages = [
            f"/admin/logs/{made['log']['id']}/",
            f"/admin/systemagents/{made['agent']['id']}/",
            f"/admin/systemagents/{made['agent']['id']}/delete/",
            f"/admin/workflow-messages/{made['message']['message_id']}/",
            f"/admin/runs/{made['run']['run_id']}/",
            "/admin/users/",
            "/admin/?" + urllib.parse.urlencode({"notice": EVIL_SCRIPT}),
        ]
        for path in pages:
            text = assert_html(b.get(path))
            assert_no_raw_markup(text, path)
            assert any(e in text for e in ESCAPED), path


# -- lists against the API -------------------------------------------------------------------------

AGAINST_API = [  # (page query, API query): the same rows in the same order
    ("levelname=ERROR", "levelname=ERROR&limit=50"),
    ("levelname=ERROR,CRITICAL&ordering=lineno", "levelname=ERROR,CRITICAL&ordering=lineno&limit=50"),
    ("min_level=30&instance_name=agent-1,agent-2", "min_level=30&instance_name=agent-1,agent-2&limit=50"),
    ("ordering=-lineno&page=2", "ordering=-lineno&limit=50&offset=50"),
    ("size=20&page=3&app_name=app-1", "limit=20&offset=40&app_name=app-1"),
    (
        "start_time=2026-03-01T01:00&end_time=2026-03-01T02:30&ordering=timestamp",
        "start_time=2026-03-01T01:00&end_time=2026-03-01T02:30&ordering=timestamp&limit=50",
    ),
    ("q=needle", "search=needle&limit=50"),
    ("levelname=NOPE", "levelname=NOPE&limit=50"),
    ("page=9", "limit=50&offset=400"),
]


def test_log_list_pages_match_the_api(server, web):
    add_logs(server, 180)
    for page_query, api_query in AGAINST_API:
        text = assert_html(web.get(f"/logs/?{page_query}"))
        api = api_json(server, f"/api/logs/?{api_query}")
        assert row_keys(text) == [str(r["id"]) for r in api["results"]], page_query
        assert shown_total(text) == api["count"], page_query
        fragment = assert_html(web.get(f"/logs/?{page_query}&fragment=rows"))
        assert row_keys(fragment) == row_keys(text), page_query


@pytest.mark.parametrize(
    "page_query",
    [
        "levelname=ERROR",
        "ordering=-lineno&page=2",
        "size=20&page=3&app_name=app-1",
        "q=needle",
    ],
)
def test_the_json_link_gives_the_same_rows(server, web, page_query):
    """The list's "JSON" link ("The same rows from the REST API") answers the rows the page shows."""
    add_logs(server, 180)
    text = web.get(f"/logs/?{page_query}").text
    link = html.unescape(re.search(r'<a class="json" href="([^"]*)"', text).group(1))
    api = api_json(server, link)
    assert [str(r["id"]) for r in api["results"]] == row_keys(text)


def test_other_lists_match_the_api(demo, web):
    for page_query, resource, api_query in (
        ("/runs/?run_number=100011", "runs", "run_number=100011"),
        (
            "/stf-files/?run_number=100010&ordering=-file_size_bytes",
            "stf-files",
            "run_number=100010&ordering=-file_size_bytes",
        ),
        ("/agents/?status=OK,WARNING", "systemagents", "status=OK,WARNING"),
        (
            "/messages/?message_type=stf_gen&ordering=sent_at",
            "workflow-messages",
            "message_type=stf_gen&ordering=sent_at",
        ),
    ):
        api = api_json(demo, f"/api/{resource}/?{api_query}&limit=50")
        assert api["count"] > 0, page_query
        text = assert_html(web.get(page_query))
        pk = BY_NAME[resource].pk.name
        assert row_keys(text) == [str(r[pk]) for r in api["results"]], page_query
        assert shown_total(text) == api["count"]


def test_choice_filters_show_counts_per_value(server, web):
    add_logs(server, 100)

    def options(query: str) -> dict[str, int]:
        doc = Doc(assert_html(web.get(f"/logs/?{query}")))
        out = {}
        for value, text, _ in doc.options["level"]:
            if value:
                found = re.fullmatch(rf"{value} [(](\d+)[)]", text)
                assert found, text
                out[value] = int(found.group(1))
        return out

    every = options("")
    assert every == {str(lv): api_json(server, "/api/logs/", level=lv, limit=1)["count"] for lv, _ in LEVELS}
    assert sum(every.values()) == 100
    assert list(every.values()) == sorted(every.values(), reverse=True)  # most frequent first
    # the other filters narrow the counts; a filter on the field itself does not
    narrowed = options("instance_name=agent-1&level=40")
    expected = {}
    for lv, _ in LEVELS:
        n = api_json(server, "/api/logs/", level=lv, instance_name="agent-1", limit=1)["count"]
        if n:
            expected[str(lv)] = n
    assert narrowed == expected
    selected = [v for v, _, sel in Doc(web.get("/logs/?level=40").text).options["level"] if sel]
    assert selected == ["40"]


@pytest.mark.parametrize(
    "query, message",
    [
        ("/runs/?run_number=abc", "run_number: Enter a number."),
        ("/logs/?min_level=high", "min_level: Enter a number."),
        ("/logs/?start_time=yesterday", "start_time: Enter a valid date/time."),
        ("/stf-files/?run=x", "run: Enter a number."),
        ("/subscribers/?is_active=perhaps", "is_active: Select a valid choice. perhaps is not one of"),
    ],
)
def test_a_bad_filter_value_shows_the_error_not_a_500(demo, web, query, message):
    text = assert_html(web.get(query))
    assert html.escape(message, quote=False) in text or message in html.unescape(text)
    assert row_keys(text) == []
    path, _, q = query.partition("?")
    resource = next(p.resource for p in PAGES if f"/{p.slug}/" == path)
    api = requests.get(f"{demo.http_url}/api/{resource}/?{q}", timeout=10)
    assert api.status_code == 400
    name, _, wording = message.partition(": ")
    assert api.json()[name][0].startswith(wording)  # the page says what the API says


def test_bad_paging_values_fall_back(server, web):
    add_logs(server, 60)
    for query, rows in (
        ("page=abc", 50),
        ("size=zero", 50),
        ("size=0", 1),
        ("size=-3", 1),
        ("page=0", 50),
        ("page=-2", 50),
        ("page=999999999999", 0),
        ("size=10&page=6", 10),
        ("size=10&page=7", 0),
    ):
        text = assert_html(web.get(f"/logs/?{query}"))
        assert len(row_keys(text)) == rows, query


# -- fragments -------------------------------------------------------------------------------------


def test_fragments_are_just_their_region(demo, web):
    for slug in ("logs", "runs", "workflows"):
        full = assert_html(web.get(f"/{slug}/"))
        part = assert_html(web.get(f"/{slug}/?fragment=rows"))
        for marker in ("<html", "<header", "<footer", "<form", 'class="related"'):
            assert marker not in part, (slug, marker)
        assert '<table class="data">' in part
        assert row_keys(part) == row_keys(full)
        assert part.strip().splitlines()[0] in full
    overview = assert_html(web.get("/?fragment=overview"))
    feed = assert_html(web.get("/?fragment=feed"))
    for part in (overview, feed):
        assert "<html" not in part and "<header" not in part and "<footer" not in part
    assert 'class="cards"' in overview and "<svg" in overview and 'class="feed-list"' not in overview
    assert 'class="feed-list"' in feed and 'class="cards"' not in feed
    messages = api_json(demo, "/api/workflow-messages/", limit=15)["results"]
    assert [a["data-key"] for a in Doc(feed).attrs("li")] == [m["message_id"] for m in messages]
    dashboard = web.get("/").text
    assert 'data-fragment="overview"' in dashboard and 'data-fragment="feed"' in dashboard
    detail = assert_html(web.get("/runs/100010/?fragment=detail"))
    assert "<html" not in detail and "<dl>" in detail


# -- secrets ---------------------------------------------------------------------------------------


def test_no_token_in_any_page_for_anonymous_users(demo, web):
    other = auth.get_or_create_token(demo.store, f"staff-{uuid.uuid4().hex[:8]}", is_staff=True)
    paths = [*every_page(demo), "/admin/", "/admin/users/", "/admin/runs/", "/no-such-page/", "/runs/1/"]
    for path in paths:
        resp = web.get(path)
        assert resp.status_code in (200, 303, 404), path
        for secret in (demo.token, other):
            assert secret not in resp.text, path
            assert secret not in str(resp.headers), path
    text = web.get("/").text
    assert "export SWF_API_TOKEN=&lt;sign in to /admin/ to see your token&gt;" in text


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_a_signed_in_staff_user_sees_the_export_lines_with_the_token(server, scheme):
    with signed_in(server, scheme=scheme) as b:
        text = assert_html(b.get("/"))
        lines = re.search(r'<pre class="env">(.*?)</pre>', text, re.S).group(1).splitlines()
        # the start-up banner's lines, whichever port the browser used: the real (port 0 resolved) URLs
        assert lines == [f"export {k}={v}" for k, v in server.client_env().items()]
        assert f"export SWF_API_TOKEN={server.token}" in lines
        assert f"export REQUESTS_CA_BUNDLE={server.ca_bundle}" in lines
    assert server.token not in requests.get(server.http_url + "/", timeout=10).text  # still not for others


def test_the_export_lines_name_the_real_http_port(server):
    with signed_in(server, scheme="https") as b:
        text = assert_html(b.get("/"))
        lines = re.search(r'<pre class="env">(.*?)</pre>', text, re.S).group(1).splitlines()
        assert f"export SWF_MONITOR_HTTP_URL={server.http_url}" in lines


# -- the admin: sign-in and sessions ---------------------------------------------------------------


def new_user(server: SwfLiteServer, staff: bool = True) -> tuple[str, str]:
    name = f"{'staff' if staff else 'user'}-{uuid.uuid4().hex[:8]}"
    return name, auth.get_or_create_token(server.store, name, is_staff=staff)


def log_in(b: Browser, username: str, token: str, next_: str = "/admin/", **kw: Any) -> requests.Response:
    form = assert_html(b.get("/admin/login/"))
    data = {"username": username, "token": token, "csrf": hidden(form, "csrf"), "next": next_}
    return b.post("/admin/login/", data=data, **kw)


def signed_in(
    server: SwfLiteServer, username: str | None = None, token: str | None = None, scheme: str = "http"
) -> Browser:
    b = browser(server, scheme)
    resp = log_in(b, username or server.settings.user, token or server.token)
    assert resp.status_code == 303 and resp.headers["Location"] == "/admin/", resp.text[:300]
    return b


def csrf_of(b: Browser) -> str:
    return hidden(assert_html(b.get("/admin/")), "csrf")


def runs_stored(server: SwfLiteServer) -> list[int]:
    return [r["run_number"] for r in api_json(server, "/api/runs/")]


@pytest.mark.parametrize(
    "path",
    [
        "/admin/",
        "/admin/runs/",
        "/admin/runs/?q=x&page=2",
        "/admin/runs/add/",
        "/admin/users/",
        "/admin/runs/1/",
        "/admin/runs/1/delete/",
    ],
)
def test_the_admin_sends_anonymous_users_to_sign_in(web, path):
    resp = web.get(path)
    assert resp.status_code == 303
    target = urllib.parse.urlsplit(resp.headers["Location"])
    assert target.path == "/admin/login/"
    assert urllib.parse.parse_qs(target.query) == {"next": [path]}
    form = assert_html(web.get(resp.headers["Location"]))
    assert hidden(form, "next") == path


def test_anonymous_posts_change_nothing(server, web):
    token_api(server, "POST", "/api/runs/", json={"run_number": 5, "start_time": "2026-03-31T12:00:00Z"})
    for path, data in (
        ("/admin/actions/reset/", {"confirm": "on"}),
        ("/admin/runs/add/", {"run_number": "6", "start_time": "2026-03-31T12:00"}),
        ("/admin/runs/1/delete/", {}),
        ("/admin/actions/counters/", {"next_run_number": "5"}),
    ):
        resp = web.post(path, data=data)
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/login/?next="), path
    assert runs_stored(server) == [5]
    assert server.ctx.service.next_values()["next_run_number"] == 100010


def test_sign_in_sets_a_strict_session_cookie(server):
    for scheme in ("http", "https"):
        with browser(server, scheme) as b:
            form = b.get("/admin/login/")
            login_cookie = set_cookies(form)["swf_lite_login"]
            assert "httponly" in login_cookie and login_cookie["samesite"].lower() == "strict"
            assert login_cookie["path"] == "/admin/"
            resp = log_in(b, server.settings.user, server.token)
            assert resp.status_code == 303
            cookies = set_cookies(resp)
            session = cookies["swf_lite_admin"]
            assert "httponly" in session, session
            assert session["samesite"].lower() == "strict", session
            assert session["path"] == "/"
            assert 0 < int(session["max-age"]) <= 24 * 3600, session
            assert ("secure" in session) == (scheme == "https"), session
            assert cookies["swf_lite_login"]["value"] in ('""', "")  # the login form's token is spent
            assert server.token not in session["value"]
            assert_html(b.get("/admin/"))


def test_sign_in_refusals(server, web):
    user, token = new_user(server, staff=False)
    resp = log_in(web, user, token)
    assert_html(resp, 403)
    assert f"{user} is not a staff user." in resp.text
    assert "swf_lite_admin" not in set_cookies(resp)
    resp = log_in(web, server.settings.user, "0" * 40)
    assert_html(resp, 401)
    assert "Unknown username or wrong token." in resp.text and "swf_lite_admin" not in set_cookies(resp)
    resp = log_in(web, "nobody-at-all", server.token)
    assert resp.status_code == 401
    # a login form token that is not the one of this browser's form
    fresh = browser(server)
    resp = fresh.post(
        "/admin/login/",
        data={
            "username": server.settings.user,
            "token": server.token,
            "csrf": hidden(web.get("/admin/login/").text, "csrf"),
        },
    )
    assert_html(resp, 403)
    assert "swf_lite_admin" not in set_cookies(resp)
    # a sign-in posted from another site
    resp = log_in(web, server.settings.user, server.token, headers={"Origin": "http://evil.example"})
    assert resp.status_code == 403 and "swf_lite_admin" not in set_cookies(resp)
    fresh.close()


def test_a_user_who_loses_the_staff_flag_is_refused(server):
    user, token = new_user(server)
    token_api(server, "POST", "/api/runs/", json={"run_number": 5, "start_time": "2026-03-31T12:00:00Z"})
    with signed_in(server, user, token) as b:
        csrf = csrf_of(b)
        auth.set_staff(server.store, user, False)
        text = assert_html(b.get("/admin/"), 403)
        assert "Staff only" in text
        assert b.post("/admin/actions/reset/", data={"csrf": csrf, "confirm": "on"}).status_code == 403
        assert runs_stored(server) == [5]


def test_posts_without_the_right_csrf_token_change_nothing(server):
    token_api(server, "POST", "/api/runs/", json={"run_number": 5, "start_time": "2026-03-31T12:00:00Z"})
    with signed_in(server) as b:
        good = csrf_of(b)
        for csrf in (None, "", "wrong", good[:-1]):
            data = {} if csrf is None else {"csrf": csrf}
            posts = (
                ("/admin/actions/reset/", {"confirm": "on"}),
                ("/admin/runs/add/", {"run_number": "6", "start_time": "2026-03-31T12:00"}),
                ("/admin/runs/1/", {"run_number": "7", "start_time": "2026-03-31T12:00"}),
                ("/admin/runs/1/delete/", {}),
                ("/admin/actions/counters/", {"next_run_number": "5"}),
                ("/admin/users/", {"username": "sneaky"}),
                (f"/admin/users/{server.settings.user}/rotate/", {}),
                ("/admin/logout/", {}),
            )
            for path, body in posts:
                resp = b.post(path, data={**body, **data})
                text = assert_html(resp, 403)
                assert "CSRF" in text, path
        assert runs_stored(server) == [5]
        assert server.ctx.service.next_values()["next_run_number"] == 100010
        assert auth.user(server.store, "sneaky") is None
        assert auth.check_login(server.store, server.settings.user, server.token) is not None
        assert_html(b.get("/admin/"))  # still signed in
        # a foreign Origin is refused even with the right token; this site's own is fine
        resp = b.post(
            "/admin/actions/reset/", data={"csrf": good, "confirm": "on"}, headers={"Origin": "http://evil.example"}
        )
        assert resp.status_code == 403 and runs_stored(server) == [5]
        resp = b.post("/admin/actions/reset/", data={"csrf": good}, headers={"Origin": server.http_url})
        assert resp.status_code == 303 and runs_stored(server) == [5]  # not confirmed: nothing deleted
        resp = b.post(
            "/admin/actions/reset/", data={"csrf": good, "confirm": "on"}, headers={"Origin": server.http_url}
        )
        assert resp.status_code == 303 and runs_stored(server) == []


def test_sign_out_ends_the_session_for_real(server):
    with signed_in(server) as b:
        cookie = b.session.cookies.get("swf_lite_admin")
        assert cookie
        assert b.post("/admin/logout/", data={}).status_code == 403  # CSRF protected too
        resp = b.post("/admin/logout/", data={"csrf": csrf_of(b)})
        assert resp.status_code == 303 and resp.headers["Location"] == "/admin/login/?out=1"
        gone = set_cookies(resp)["swf_lite_admin"]
        assert gone["value"] in ('""', "") and (gone.get("max-age") in ("0", "-1") or "1970" in gone.get("expires", ""))
        assert "You are signed out." in assert_html(b.get("/admin/login/?out=1"))
        replay = browser(server)
        replay.session.cookies.set("swf_lite_admin", cookie)  # the old cookie, kept by an attacker
        resp = replay.get("/admin/")
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/login/")
        replay.close()


def test_forged_and_expired_session_cookies_are_refused(server):
    who = auth.user(server.store, server.settings.user)
    server.store.connect()
    expired, _ = auth.start_session(server.store, who, seconds=-10)
    live, _ = auth.start_session(server.store, who)
    sid, _, mac = live.partition(".")
    for value in (expired, f"{sid}.{'0' * len(mac)}", sid, f"x.{mac}", "", "."):
        b = browser(server)
        b.session.cookies.set("swf_lite_admin", value)
        resp = b.get("/admin/")
        assert resp.status_code == 303, value
        b.close()
    b = browser(server)
    b.session.cookies.set("swf_lite_admin", live)
    assert_html(b.get("/admin/"))
    b.close()


def test_rotating_a_token_ends_that_users_sessions(server):
    user, token = new_user(server)
    first, second = signed_in(server, user, token), signed_in(server, user, token)
    admin = signed_in(server)
    try:
        resp = admin.post(f"/admin/users/{user}/rotate/", data={"csrf": csrf_of(admin)})
        assert resp.status_code == 303
        for b in (first, second):
            resp = b.get("/admin/")
            assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/login/")
        assert_html(admin.get("/admin/"))  # other users' sessions live on
        assert log_in(browser(server), user, token).status_code == 401  # the old token is dead
        new = auth.user(server.store, user).token
        assert new != token and log_in(browser(server), user, new).status_code == 303
        # rotating one's own token ends one's own session
        own_user, own_token = new_user(server)
        own = signed_in(server, own_user, own_token)
        resp = own.post(f"/admin/users/{own_user}/rotate/", data={"csrf": csrf_of(own)})
        assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/login/")
        assert own.get("/admin/").status_code == 303
        own.close()
    finally:
        for b in (first, second, admin):
            b.close()


def test_the_add_form_shows_the_apis_wording_and_stores_nothing(server):
    with signed_in(server) as b:
        csrf = csrf_of(b)
        body = {"run_number": "abc", "start_time": "", "end_time": "31/03/2026", "run_conditions": ""}
        resp = b.post("/admin/runs/add/", data={**body, "csrf": csrf})
        text = assert_html(resp, INVALID)
        api = token_api(server, "POST", "/api/runs/", json={"run_number": "abc", "end_time": "31/03/2026"})
        assert api.status_code == 400
        assert field_errors(text) == api.json()
        assert set(field_errors(text)) == {"run_number", "start_time", "end_time"}
        assert 'value="abc"' in text and 'value="31/03/2026"' in text  # what was typed is kept
        resp = b.post(
            "/admin/runs/add/",
            data={"run_number": "5", "start_time": "2026-03-31T12:00", "run_conditions": "{not json", "csrf": csrf},
        )
        assert field_errors(assert_html(resp, INVALID)) == {"run_conditions": ["Value must be valid JSON."]}
        assert runs_stored(server) == []
        # a foreign key that does not exist, and a unique value taken: the API's words again
        form = Doc(assert_html(b.get("/admin/stf-files/add/"))).forms["/admin/stf-files/add/"]
        assert form["csrf"] == csrf and form["status"] == "registered"  # the defaults, as a browser sends them
        resp = b.post("/admin/stf-files/add/", data={**form, "stf_filename": "a.stf", "run": "999"})
        api = token_api(server, "POST", "/api/stf-files/", json={"stf_filename": "a.stf", "run": "999"})
        assert (
            field_errors(assert_html(resp, INVALID))
            == api.json()
            == {"run": ['Invalid pk "999" - object does not exist.']}
        )
        assert api_json(server, "/api/stf-files/") == []
        resp = b.post("/admin/runs/add/", data={"run_number": "5", "start_time": "2026-03-31T12:00", "csrf": csrf})
        assert resp.status_code == 303 and runs_stored(server) == [5]
        resp = b.post("/admin/runs/add/", data={"run_number": "5", "start_time": "2026-03-31T12:00", "csrf": csrf})
        api = token_api(server, "POST", "/api/runs/", json={"run_number": 5, "start_time": "2026-03-31T12:00"})
        assert field_errors(assert_html(resp, INVALID)) == api.json()
        assert runs_stored(server) == [5]


def test_every_edit_form_saved_unchanged_changes_nothing(demo):
    """What a browser submits from each resource's edit form as loaded (dates, JSON, checkboxes,
    choices as the form shows them) is accepted and stores the same values; add forms render."""
    with signed_in(demo) as b:
        assert_html(b.get("/admin/"))
        assert_html(b.get("/admin/users/"))
        for missing in ("/admin/runs/abc/", "/admin/runs/999999/", "/admin/no-such-resource/add/"):
            assert_html(b.get(missing), 404)
        for r in [p.r for p in PAGES]:
            assert_html(b.get(f"/admin/{r.name}/add/"))
            before = demo.ctx.service.list(r, limit=1).rows[0]
            path = f"/admin/{r.name}/{urllib.parse.quote(str(before[r.pk.name]), safe='')}/"
            form = Doc(assert_html(b.get(path))).forms[path]
            resp = b.post(path, data=form)
            assert resp.status_code == 303, (r.name, field_errors(resp.text))
            assert "saved" in urllib.parse.unquote_plus(resp.headers["Location"]), r.name
            after = demo.ctx.service.get(r, before[r.pk.name])
            changed = {k for k in before if before[k] != after[k]} - {"updated_at"}
            assert not changed, (r.name, {k: (before[k], after[k]) for k in changed})
        # and delete through the confirmation page
        run = demo.ctx.service.list(BY_NAME["runs"], limit=1).rows[0]
        confirm = assert_html(b.get(f"/admin/runs/{run['run_id']}/delete/"))
        resp = b.post(f"/admin/runs/{run['run_id']}/delete/", data={"csrf": hidden(confirm, "csrf")})
        assert resp.status_code == 303
        assert run["run_number"] not in runs_stored(demo)


def test_the_admin_record_lists(server):
    made = add_evil(server)
    add_logs(server, 120)
    with signed_in(server) as b:
        for path in ("/admin/logs/", "/admin/systemagents/", "/admin/workflow-messages/", "/admin/runs/"):
            text = assert_html(b.get(path))
            assert_no_raw_markup(text, path)
            assert any(e in text for e in ESCAPED), path
        text = b.get("/admin/logs/").text
        assert len(row_keys(text)) == 50 and shown_range(text) == (1, 50, 121)
        assert f'href="/admin/systemagents/{made["agent"]["id"]}/"' in b.get("/admin/systemagents/").text


def test_every_choice_the_add_form_offers_can_be_saved(server):
    token_api(server, "POST", "/api/runs/", json={"run_number": 5, "start_time": "2026-03-31T12:00:00Z"})
    with signed_in(server) as b:
        text = assert_html(b.get("/admin/stf-files/add/"))
        form = Doc(text).forms["/admin/stf-files/add/"]
        offered = [value for value, _, _ in Doc(text).options["status"]]
        for i, value in enumerate(offered):
            resp = b.post(
                "/admin/stf-files/add/", data={**form, "stf_filename": f"f{i}.stf", "run": "1", "status": value}
            )
            assert resp.status_code == 303, (value, field_errors(resp.text))


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "http://evil.example/admin/",
        "/\\evil.example/",
        "\\\\evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "/\t/evil.example/",  # browsers drop the tab: //evil.example/
        "/\n/evil.example/",  # bottle refused the header: a 500 after the session was stored
    ],
)
def test_sign_in_never_redirects_off_site(server, target):
    """``next`` is followed only to a path of this site, after the WHATWG URL parser (which drops
    tabs and newlines) has read the Location as a browser would."""
    with browser(server) as b:
        form = b.get("/admin/login/?" + urllib.parse.urlencode({"next": target}))
        shown = hidden(assert_html(form), "next")
        resp = log_in(b, server.settings.user, server.token, next_=target)
        assert resp.status_code == 303, resp.status_code
        where = resp.headers["Location"]
        browser_view = re.sub(r"[\t\n\r]", "", where)
        assert urllib.parse.urlsplit(urllib.parse.urljoin(server.http_url + "/admin/login/", browser_view)).netloc == (
            urllib.parse.urlsplit(server.http_url).netloc
        ), where
        assert where.startswith("/") and not where.startswith("//"), where
        assert shown == where or shown.startswith("/"), shown


def test_sign_in_follows_a_path_of_this_site(server):
    with browser(server) as b:
        resp = log_in(b, server.settings.user, server.token, next_="/runs/?run_number=5&ordering=-start_time")
        assert resp.headers["Location"] == "/runs/?run_number=5&ordering=-start_time"


# -- bounded paging --------------------------------------------------------------------------------


def test_paging_stays_bounded(server, web):
    add_logs(server, 2000)
    text = assert_html(web.get("/logs/"))
    assert len(row_keys(text)) == 50 and shown_total(text) == 2000
    assert 'rel="next"' in text and 'rel="prev"' not in text
    capped = assert_html(web.get("/logs/?size=100000"))
    assert len(row_keys(capped)) == 500
    assert shown_range(capped) == (1, 500, 2000)
    assert len(row_keys(web.get("/logs/?size=100000&fragment=rows").text)) == 500
    last = assert_html(web.get("/logs/?page=40"))
    assert len(row_keys(last)) == 50 and 'rel="next"' not in last and 'rel="prev"' in last
    assert shown_range(last) == (1951, 2000, 2000)
    dashboard = Doc(assert_html(web.get("/")))
    assert len([a for a in dashboard.attrs("tr") if "data-key" in a]) <= 10 + 8 + 4 * 5
