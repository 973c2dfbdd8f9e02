"""The web pages in a real browser (issue 10): Chromium driven by Playwright against one swf-lite.

Every page loads without console errors or CSP violations, data posted through the API shows up
(live, without a reload), lists sort, filter, search and page, the admin signs in, validates, edits,
deletes and manages tokens, forged cross-site forms are refused, stored markup never runs and the
keyboard reaches the navigation. Screenshots go to ``test-artifacts/screenshots/`` (not committed).
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.parse
import uuid
from pathlib import Path

import pytest
import requests

if not Path("/usr/bin/chromium").exists():
    pytest.skip("Chromium is not installed at /usr/bin/chromium", allow_module_level=True)

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from playwright.sync_api import TimeoutError as PlaywrightTimeout  # noqa: E402

from swf_lite import auth, seeding  # noqa: E402
from swf_lite.catalog import BY_NAME  # noqa: E402
from swf_lite.pages.site import BY_SLUG  # noqa: E402
from swf_lite.server import SwfLiteServer  # noqa: E402

from conftest import make_settings  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 10_000
LIVE_MS = 5_000
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "screenshots"
LIST_SLUGS = (
    "runs", "stf-files", "fastmon-files", "tf-slices", "workflows", "agents", "messages", "logs",
    "workflow-definitions", "workflow-executions", "workflow-stages", "workers", "run-states",
    "system-state-events", "subscribers", "namespaces", "ai-memory",
)  # fmt: skip
MAIN_NAV = ("runs", "stf-files", "fastmon-files", "tf-slices", "workflows", "agents", "messages", "logs")
PWNED = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
# Collects CSP violations the page reports (an init script is not itself subject to the page's CSP).
CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory, engine):
    """One swf-lite for the module (plain HTTP; the pages are the same on both ports), on each engine."""
    with engine.serve(tmp_path_factory.mktemp("browser"), tls=False) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], timeout=TIMEOUT_MS)
        yield b
        b.close()


@pytest.fixture
def fresh(site):
    """The server with no records (users and their tokens stay)."""
    site.ctx.reset()
    return site


class Tab:
    """One browser context with one page, collecting console errors, page errors and CSP violations."""

    def __init__(self, browser, base: str, width: int = 1280, height: int = 900):
        self.base = base
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.context.set_default_timeout(TIMEOUT_MS)
        self.context.set_default_navigation_timeout(TIMEOUT_MS)
        self.context.add_init_script(CSP_WATCH)
        self.errors: list[str] = []
        self.page = self.new_page()

    def new_page(self) -> Page:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(f"console {m.type} at {page.url}: {m.text}")
                if m.type == "error" else None)  # fmt: skip
        page.on("pageerror", lambda e: self.errors.append(f"pageerror at {page.url}: {e}"))
        return page

    def goto(self, path: str, status: int = 200, page: Page | None = None):
        page = page or self.page
        resp = page.goto(self.base + path)
        assert resp is not None, path
        assert resp.status == status, f"{path}: HTTP {resp.status}"
        return resp

    def csp_violations(self, page: Page | None = None) -> list[str]:
        return (page or self.page).evaluate("window.__csp || []")

    def assert_clean(self, page: Page | None = None, *, allow_http_errors: bool = False) -> None:
        """No script error, no console error (optionally except failed loads that the test caused on
        purpose, e.g. a 403 page) and no CSP violation on the current document."""
        errors = self.errors
        if allow_http_errors:
            errors = [e for e in errors if "Failed to load resource: the server responded" not in e]
        assert errors == []
        assert self.csp_violations(page) == []

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, site):
    t = Tab(browser, site.http_url)
    yield t
    t.close()


# -- API helpers (the way agents talk to the server) -------------------------------------------------


def call(site, method: str, path: str, body=None, token: str | None = "", expect=(200, 201)):
    """One API request; ``token=""`` means the default user's token, ``None`` no token."""
    headers = {} if token is None else {"Authorization": f"Token {token or site.token}"}
    with requests.Session() as s:
        s.trust_env = False  # straight to 127.0.0.1, whatever proxy the machine has
        resp = s.request(method, site.http_url + path, json=body, headers=headers, timeout=10, allow_redirects=False)
    if expect is not None:
        assert resp.status_code in ((expect,) if isinstance(expect, int) else expect), resp.text
    return resp


def new_run(site, run_number: int | None = None) -> dict:
    if run_number is None:
        run_number = call(site, "POST", "/api/state/next-run-number/").json()["run_number"]
    return call(site, "POST", "/api/runs/", {"run_number": run_number, "start_time": "2026-03-31T12:00:00"}).json()


def new_stf(site, run: dict, name: str, status: str = "registered") -> dict:
    body = {"run": run["run_id"], "stf_filename": name, "file_size_bytes": 1234, "machine_state": "physics",
            "status": status, "metadata": {"created_by": "data-agent-test"}}  # fmt: skip
    return call(site, "POST", "/api/stf-files/", body).json()


def new_log(site, message: str, *, levelname: str = "INFO", level: int = 20, instance: str = "data-agent-1") -> dict:
    body = {"app_name": "base_agent", "instance_name": instance, "timestamp": "2026-03-31T08:22:52.123456",
            "level": level, "levelname": levelname, "message": message, "module": "data_agent",
            "funcname": "on_message", "lineno": 212, "process": 31337, "thread": 1402, "extra_data": None}  # fmt: skip
    return call(site, "POST", "/api/logs/", body, token=None).json()


def new_message(site, message_type: str, content: dict, run_number: int | None = None, sender: str = "daq-1") -> dict:
    body = {"message_type": message_type, "sender_agent": sender, "sender_type": "daqsim",
            "message_content": content, "run_id": None if run_number is None else str(run_number)}  # fmt: skip
    return call(site, "POST", "/api/workflow-messages/", body).json()


def heartbeat(site, instance_name: str) -> dict:
    body = {"instance_name": instance_name, "agent_type": "data", "status": "OK", "description": "test agent",
            "operational_state": "READY", "hostname": "h1", "pid": 4242}  # fmt: skip
    return call(site, "POST", "/api/systemagents/heartbeat/", body).json()


# -- page helpers --------------------------------------------------------------------------------------


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def check_page(page: Page, resp, what: str) -> None:
    """Status 200, a titled page, the security headers."""
    assert resp is not None and resp.status == 200, f"{what}: HTTP {resp and resp.status}"
    title = page.title()
    assert title.endswith(" · swf-lite") and len(title) > len(" · swf-lite"), f"{what}: title {title!r}"
    headers = resp.headers
    csp = headers.get("content-security-policy", "")
    assert csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp, f"{what}: CSP {csp!r}"
    assert headers.get("x-content-type-options") == "nosniff", what


def row_keys(page: Page, scope: str = "section#rows") -> list[str]:
    return page.eval_on_selector_all(f"{scope} tr[data-key]", "els => els.map(e => e.dataset.key)")


def column(page: Page, name: str, scope: str = "section#rows") -> list[str]:
    """The texts of one column of the list table, found by its sort link."""
    return page.evaluate(
        """([scope, name]) => {
            const table = document.querySelector(scope + ' table.data');
            const ths = Array.from(table.querySelectorAll('thead th'));
            const i = ths.findIndex(th => {
                const a = th.querySelector('a');
                return a && new URL(a.href).searchParams.get('ordering')?.replace(/^-/, '') === name;
            });
            if (i < 0) throw new Error('no column ' + name);
            return Array.from(table.querySelectorAll('tbody tr')).map(tr => tr.cells[i].innerText.trim());
        }""",
        [scope, name],
    )


# Records every element the live script marks as arrived (the mark lasts only until the region's next
# refresh, so a test could miss it between two changes): "<region id>:<data-key>".
WATCH_ARRIVALS = """() => {
    window.__arrived = [];
    new MutationObserver(changes => {
        for (const c of changes) {
            const el = c.target;
            if (el.classList && el.classList.contains('arrived')) {
                const region = el.closest('.live-region');
                window.__arrived.push((region ? region.id : '') + ':' + el.dataset.key);
            }
        }
    }).observe(document.body, {subtree: true, attributes: true, attributeFilter: ['class']});
}"""


def wait_arrived(page: Page, region: str, key: str) -> None:
    """The live script marked ``key`` in ``region`` as arrived (and it is still shown)."""
    page.wait_for_function("m => window.__arrived.includes(m)", arg=f"{region}:{key}", timeout=LIVE_MS)
    assert page.locator(f'#{region} [data-key="{key}"]').count() == 1, f"{region}: {key} gone again"


def count_text(page: Page) -> str:
    return " ".join(page.inner_text("section#rows .count").split())


def no_overflow(page: Page) -> None:
    width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1] + 1, f"{page.url}: page {width[0]} px wide in a {width[1]} px window"


def sign_in(tab: Tab, site, username: str = "admin", token: str | None = None, next_path: str = "/admin/") -> None:
    page = tab.page
    tab.goto("/admin/login/?next=" + urllib.parse.quote(next_path, safe=""))
    page.fill("#username", username)
    page.fill("#token", token or site.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector(".admin-bar")


def admin_cookie(tab: Tab) -> dict:
    found = [c for c in tab.context.cookies() if c["name"] == auth.ADMIN_COOKIE]
    assert len(found) == 1, tab.context.cookies()
    return found[0]


# -- 1. every page ---------------------------------------------------------------------------------


def test_every_page_loads_clean_and_the_nav_reaches_every_list(fresh, browser, tab):
    site = fresh
    seeding.load_file(site.ctx.service, seeding.demo_path())
    svc = site.ctx.service

    def first(resource: str) -> dict:
        return svc.list(BY_NAME[resource], limit=1).rows[0]

    page = tab.page
    check_page(page, tab.goto("/"), "dashboard")
    assert page.locator("#overview a.stat").count() >= 7 and page.locator("#overview svg").count() >= 3
    assert page.locator("#feed ol.feed-list li[data-key]").count() > 0
    shot(page, "dashboard")

    # The navigation reaches every list: main links directly, the others through "More".
    for slug in LIST_SLUGS:
        link = page.locator(f'header.top nav a[href="/{slug}/"]')
        assert link.count() == 1, slug
        if slug not in MAIN_NAV:
            more = page.locator("header.top nav details.more")
            assert link.is_hidden(), f"{slug} should sit in the closed More menu"
            more.locator("summary").click()
            assert more.get_attribute("open") is not None
        with page.expect_navigation() as nav:
            link.click()
        assert page.url == f"{site.http_url}/{slug}/"
        check_page(page, nav.value, slug)
        assert page.locator(f'header.top nav a[href="/{slug}/"][aria-current="page"]').count() == 1
        assert page.locator("form.filters input[name=q]").count() == 1, slug
        assert page.locator("section#rows .count").count() == 1, slug
        assert page.locator("a.json").get_attribute("href").startswith(f"/api/{BY_SLUG[slug].resource}/"), slug
        shot(page, f"list-{slug}")

    run, stf, agent = first("runs"), first("stf-files"), first("systemagents")
    details = {
        "detail-run": f"/runs/{run['run_number']}/",
        "detail-stf-file-by-name": f"/stf-files/{stf['stf_filename']}/",
        "detail-stf-file": f"/stf-files/{stf['file_id']}/",
        "detail-agent": f"/agents/{urllib.parse.quote(agent['instance_name'])}/",
        "detail-message": f"/messages/{first('workflow-messages')['message_id']}/",
        "detail-log": f"/logs/{first('logs')['id']}/",
        "detail-workflow": f"/workflows/{first('workflows')['workflow_id']}/",
        "detail-workflow-execution": f"/workflow-executions/{first('workflow-executions')['execution_id']}/",
        "detail-namespace": f"/namespaces/{first('namespaces')['name']}/",
        "log-summary": "/logs/summary/",
        "persistent-state": "/persistent-state/",
    }
    for name, path in details.items():
        resp = page.goto(site.http_url + path)
        check_page(page, resp, path)
        assert page.locator("main h1").count() == 1, path
        shot(page, name)
    page.goto(site.http_url + details["detail-run"])
    assert page.locator("main h1").inner_text() == f"Run {run['run_number']}"
    assert page.locator("section.related").count() >= 5  # STF files, fast-monitoring files, ...

    resp = page.goto(site.http_url + "/admin/")
    assert page.url == f"{site.http_url}/admin/login/?next=%2Fadmin%2F"
    check_page(page, resp, "admin login")
    shot(page, "admin-login")

    # After all that browsing (each page opened a change stream), live updates still connect.
    page.goto(site.http_url + "/")
    page.wait_for_selector("#live-state.on", timeout=LIVE_MS)
    tab.assert_clean()

    narrow = Tab(browser, site.http_url, width=420, height=900)
    try:
        for name, path in (("dashboard", "/"), ("list-stf-files", "/stf-files/"), ("list-logs", "/logs/"),
                           ("detail-run", details["detail-run"]), ("admin-login", "/admin/login/")):  # fmt: skip
            check_page(narrow.page, narrow.goto(path), path)
            shot(narrow.page, f"narrow-{name}")
            if name in ("dashboard", "list-stf-files", "list-logs"):
                no_overflow(narrow.page)
        narrow.assert_clean()
    finally:
        narrow.close()


# -- 2. data posted through the API shows ---------------------------------------------------------------


def test_posted_data_appears_on_lists_detail_and_dashboard(fresh, tab):
    site = fresh
    run = new_run(site)
    rn = run["run_number"]
    names = [f"swf.{rn}.{i:06d}.stf" for i in range(1, 7)]
    files = [new_stf(site, run, n) for n in names]
    log = new_log(site, f"Run {rn} started: all good")
    msg = new_message(site, "stf_gen", {"filename": names[0]}, run_number=rn)
    page = tab.page

    tab.goto("/runs/")
    assert row_keys(page) == [str(run["run_id"])]
    with page.expect_navigation():
        page.locator("section#rows tr[data-key] a.rowlink").click()
    assert page.url == f"{site.http_url}/runs/{rn}/"
    stf_section = page.locator("section.related", has=page.locator("h2", has_text="STF files"))
    assert stf_section.count() == 1
    assert stf_section.locator("h2 .n").inner_text() == "6"
    assert sorted(stf_section.locator("tr[data-key]").evaluate_all("els => els.map(e => e.dataset.key)")) == sorted(
        f["file_id"] for f in files
    )
    for n in names:
        assert stf_section.get_by_text(n, exact=True).count() == 1
    msg_section = page.locator("section.related", has=page.locator("h2", has_text=re.compile("^Messages")))
    assert msg_section.locator(f'tr[data-key="{msg["message_id"]}"]').count() == 1
    shot(page, "data-run-detail")

    tab.goto("/stf-files/")
    assert sorted(row_keys(page)) == sorted(f["file_id"] for f in files)
    assert sorted(column(page, "stf_filename")) == names
    assert set(column(page, "run")) == {str(rn)}  # the run column shows the run number, linked
    assert page.locator(f'section#rows a[href="/runs/{rn}/"]').count() == 6
    assert count_text(page) == "Rows 1–6 of 6"

    tab.goto("/logs/")
    assert row_keys(page) == [str(log["id"])]
    assert page.locator("section#rows").get_by_text(f"Run {rn} started: all good").count() == 1

    tab.goto("/messages/")
    assert row_keys(page) == [msg["message_id"]]
    assert column(page, "message_type") == ["stf_gen"]

    tab.goto("/")
    cards = dict(
        page.locator("#overview a.stat").evaluate_all(
            "els => els.map(a => [a.getAttribute('href'), a.querySelector('.n').innerText])"
        )
    )
    assert cards["/runs/"] == "1" and cards["/stf-files/"] == "6" and cards["/logs/"] == "1"
    assert cards["/messages/"] == "1" and cards["/agents/"] == "0"
    assert page.locator(f'#feed li[data-key="{msg["message_id"]}"]').count() == 1
    latest = page.locator("#overview section.related[data-resource=stf-files]")
    assert latest.locator("h2 .n").inner_text() == "6"
    # "Latest STF files" shows five files: the newest must be among them.
    assert latest.locator(f'tr[data-key="{files[-1]["file_id"]}"]').count() == 1, "newest STF file not in 'Latest'"
    tab.assert_clean()


# -- 3. live updates ---------------------------------------------------------------------------------


def test_live_regions_update_without_reload(fresh, tab):
    site = fresh
    run = new_run(site)
    old_file = new_stf(site, run, "swf.live.000001.stf")
    old_msg = new_message(site, "run_imminent", {"run": run["run_number"]}, run_number=run["run_number"])

    messages, dashboard, stf = tab.page, tab.new_page(), tab.new_page()
    for page, path in ((messages, "/messages/"), (dashboard, "/"), (stf, "/stf-files/")):
        tab.goto(path, page=page)
        page.wait_for_selector("#live-state.on", timeout=LIVE_MS)
        page.evaluate("window.__same_document = true")
        page.evaluate(WATCH_ARRIVALS)

    msg = new_message(site, "stf_ready", {"filename": "swf.live.000002.stf"}, run_number=run["run_number"])
    new_file = new_stf(site, run, "swf.live.000002.stf")

    wait_arrived(messages, "rows", msg["message_id"])
    assert messages.locator(f'section#rows tr[data-key="{old_msg["message_id"]}"]').count() == 1
    assert f"rows:{old_msg['message_id']}" not in messages.evaluate("window.__arrived")
    wait_arrived(dashboard, "feed", msg["message_id"])
    assert dashboard.locator(f'#feed li[data-key="{msg["message_id"]}"]').count() == 1
    wait_arrived(dashboard, "overview", new_file["file_id"])
    wait_arrived(stf, "rows", new_file["file_id"])
    assert stf.locator(f'section#rows tr[data-key="{old_file["file_id"]}"]').count() == 1
    assert count_text(stf) == "Rows 1–2 of 2"
    dashboard.wait_for_function(
        "document.querySelector('#overview a.stat[href=\"/stf-files/\"] .n').innerText === '2'", timeout=LIVE_MS
    )
    for page in (messages, dashboard, stf):
        assert page.evaluate("window.__same_document") is True, f"{page.url} was reloaded"
        tab.assert_clean(page)
    shot(dashboard, "live-dashboard")


def test_first_row_into_an_empty_live_list_appears(fresh, tab):
    """A list that starts empty fills in live too (the "No messages yet" state is replaced)."""
    site = fresh
    page = tab.page
    tab.goto("/messages/")
    page.wait_for_selector("#live-state.on", timeout=LIVE_MS)
    assert count_text(page) == "No rows"
    msg = new_message(site, "start_run", {"run": 1})
    page.wait_for_selector(f'section#rows tr[data-key="{msg["message_id"]}"]', timeout=LIVE_MS)
    assert count_text(page) == "Rows 1–1 of 1"
    tab.assert_clean()


def test_pages_left_behind_give_their_stream_slot_back(browser, tmp_path):
    """Every page view opens a change stream; leaving the page must not keep its slot until the next
    heartbeat (30 s), or quick browsing locks every later page, and the agents' message streams that
    share the slots, out with 503s. A small server (6 slots) makes that quick to see."""
    srv = SwfLiteServer(make_settings(tmp_path / "slots", tls=False, sse_max_clients=6)).start()
    t = Tab(browser, srv.http_url)
    try:
        for view in range(10):  # more page views than slots, as a user clicking through lists does
            t.goto(("/runs/", "/stf-files/", "/logs/")[view % 3])
            try:
                t.page.wait_for_selector("#live-state.on", timeout=LIVE_MS)
            except PlaywrightTimeout:
                pytest.fail(f"page view {view + 1} never went live ({len(srv.ctx.bus)} of 6 stream slots in use now, "
                            f"most by pages already left); browser: {t.errors[-1:]}")  # fmt: skip
        headers = {"Authorization": f"Token {srv.token}"}
        with requests.get(srv.http_url + "/api/messages/stream/", headers=headers, stream=True, timeout=5) as resp:
            assert resp.status_code == 200, "an agent cannot subscribe after someone browsed the pages"
        t.assert_clean(allow_http_errors=True)  # a page may retry after a 503 if it then goes live
    finally:
        t.close()
        srv.stop()


# -- 4. sorting, filtering, search, paging, JSON --------------------------------------------------------


STATUSES = BY_NAME["stf-files"].field("status").choices


@pytest.fixture
def many_files(fresh):
    """120 STF files of one run, statuses in turn (24 each), created through the service in one go."""
    site = fresh
    svc = site.ctx.service
    run = svc.create(BY_NAME["runs"], {"run_number": 100200, "start_time": "2026-03-31T12:00:00"})
    files = []
    with svc.transaction():
        for i in range(120):
            files.append(svc.create(BY_NAME["stf-files"], {
                "run": run["run_id"], "stf_filename": f"swf.100200.{i:06d}.stf", "status": STATUSES[i % len(STATUSES)],
                "file_size_bytes": (i * 7919) % 1000 + 1,
            }))  # fmt: skip
    return files


def test_sort_by_clicking_a_heading_twice(many_files, tab):
    page = tab.page
    names = sorted(f["stf_filename"] for f in many_files)
    tab.goto("/stf-files/")
    with page.expect_navigation():
        page.locator("section#rows th a", has_text="stf filename").click()
    assert "ordering=stf_filename" in page.url
    th = page.locator("section#rows th", has_text="stf filename")
    assert th.get_attribute("aria-sort") == "ascending"
    assert column(page, "stf_filename") == names[:50]
    with page.expect_navigation():
        page.locator("section#rows th a", has_text="stf filename").click()
    assert "ordering=-stf_filename" in page.url
    assert th.get_attribute("aria-sort") == "descending"
    assert column(page, "stf_filename") == names[::-1][:50]
    assert page.locator("section#rows th[aria-sort]").count() == 1

    with page.expect_navigation():
        page.locator("section#rows th a", has_text="file size bytes").click()
    sizes = [int(v.replace(",", "")) for v in column(page, "file_size_bytes")]
    assert sizes == sorted(sizes) and sizes[0] == min(f["file_size_bytes"] for f in many_files)
    tab.assert_clean()


def test_filter_by_status_and_search(many_files, tab):
    page = tab.page
    tab.goto("/stf-files/")
    options = page.locator("form.filters select[name=status] option").all_inner_texts()
    assert options[0].strip() == "any"
    assert sorted(o.strip() for o in options[1:]) == sorted(f"{s} (24)" for s in STATUSES)
    page.select_option("form.filters select[name=status]", "failed")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert "status=failed" in page.url
    assert count_text(page) == "Rows 1–24 of 24"
    assert set(column(page, "status")) == {"failed"}
    assert sorted(row_keys(page)) == sorted(f["file_id"] for f in many_files if f["status"] == "failed")
    assert page.locator("form.filters select[name=status]").input_value() == "failed"
    shot(page, "list-stf-files-filtered")

    page.fill("form.filters input[name=q]", "000042")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    target = next(f for f in many_files if f["stf_filename"] == "swf.100200.000042.stf")
    if target["status"] == "failed":
        assert row_keys(page) == [target["file_id"]]
    else:
        assert count_text(page) == "No rows"
    page.select_option("form.filters select[name=status]", "")
    with page.expect_navigation():
        page.get_by_role("button", name="Filter").click()
    assert row_keys(page) == [target["file_id"]]
    assert count_text(page) == "Rows 1–1 of 1"
    with page.expect_navigation():
        page.get_by_role("link", name="Clear").click()
    assert count_text(page) == "Rows 1–50 of 120"
    tab.assert_clean()


def test_pagination_and_the_json_twin(many_files, site, tab):
    page = tab.page
    tab.goto("/stf-files/")
    assert count_text(page) == "Rows 1–50 of 120"
    assert page.locator("nav.pager a[rel=prev]").count() == 0
    seen = [row_keys(page)]
    for expected, number in (("Rows 51–100 of 120", 2), ("Rows 101–120 of 120", 3)):
        with page.expect_navigation():
            page.locator("nav.pager a[rel=next]").click()
        assert f"page={number}" in page.url
        assert count_text(page) == expected
        seen.append(row_keys(page))
    assert page.locator("nav.pager a[rel=next]").count() == 0
    assert [len(s) for s in seen] == [50, 50, 20]
    every = [k for s in seen for k in s]
    assert sorted(every) == sorted(f["file_id"] for f in many_files), "pages skip or repeat rows"

    with page.expect_navigation():
        page.locator("nav.pager a[rel=prev]").click()
    assert count_text(page) == "Rows 51–100 of 120"
    assert row_keys(page) == seen[1]

    href = page.locator("a.json").get_attribute("href")
    assert href.startswith("/api/stf-files/")
    data = call(site, "GET", href, token=None).json()
    assert data["count"] == 120
    assert [r["file_id"] for r in data["results"]] == seen[1]

    tab.goto("/stf-files/?status=processed&ordering=-stf_filename&size=10&page=2")
    assert count_text(page) == "Rows 11–20 of 24"
    data = call(site, "GET", page.locator("a.json").get_attribute("href"), token=None).json()
    assert data["count"] == 24 and [r["file_id"] for r in data["results"]] == row_keys(page)
    with page.expect_navigation():
        page.locator("nav.pager a[rel=next]").click()
    assert count_text(page) == "Rows 21–24 of 24"
    assert set(column(page, "status")) == {"processed"}  # the filter, order and size survive paging
    tab.assert_clean()


# -- 5. admin --------------------------------------------------------------------------------------


def test_admin_sign_in_refuses_strangers_and_admits_staff(fresh, tab):
    site = fresh
    page = tab.page
    new_run(site, 4100)
    bob = f"bob-{uuid.uuid4().hex[:6]}"
    site.store.connect()
    bob_token = auth.get_or_create_token(site.store, bob)

    resp = page.goto(site.http_url + "/admin/runs/")
    assert resp.status == 200 and page.url == f"{site.http_url}/admin/login/?next=%2Fadmin%2Fruns%2F"
    assert page.locator(".admin-bar").count() == 0
    page.fill("#username", "admin")
    page.fill("#token", "0" * 40)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Sign in").click()
    assert nav.value.status == 401
    assert page.locator(".messages li.error").inner_text() == "Unknown username or wrong token."
    assert page.locator(".admin-bar").count() == 0

    page.fill("#username", bob)
    page.fill("#token", bob_token)
    with page.expect_navigation() as nav:
        page.get_by_role("button", name="Sign in").click()
    assert nav.value.status == 403
    assert page.locator(".messages li.error").inner_text() == f"{bob} is not a staff user."
    assert auth.ADMIN_COOKIE not in {c["name"] for c in tab.context.cookies()}

    page.fill("#username", "admin")
    page.fill("#token", site.token)
    with page.expect_navigation(url=f"{site.http_url}/admin/runs/") as nav:  # the next= target
        page.get_by_role("button", name="Sign in").click()
    assert nav.value.status == 200, f"/admin/runs/ after sign-in: HTTP {nav.value.status}"
    assert "Signed in as admin" in " ".join(page.inner_text(".admin-bar").split())
    assert column(page, "run_number", scope="main") == ["4100"]
    cookie = admin_cookie(tab)
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    tab.assert_clean(allow_http_errors=True)  # the 401 and 403 answers above are deliberate


def test_admin_creates_validates_edits_and_deletes_a_run(fresh, tab):
    site = fresh
    page = tab.page
    sign_in(tab, site)
    shot(page, "admin-index")
    page.locator("tr", has=page.locator('a[href="/admin/runs/"]')).get_by_role("link", name="add").click()
    page.wait_for_url(f"{site.http_url}/admin/runs/add/")
    with page.expect_navigation():
        page.get_by_role("button", name="Save").click()
    assert page.url == f"{site.http_url}/admin/runs/add/"  # the form again, to fix
    assert page.inner_text("ul.errorlist#e-run_number").strip() == "This field is required."
    assert page.inner_text("ul.errorlist#e-start_time").strip() == "This field is required."
    assert call(site, "GET", "/api/runs/", token=None).json() == []
    page.fill("#f-run_number", "4242")
    page.fill("#f-start_time", "2026-03-31T12:00:00Z")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/admin/runs/\d+/\?notice="))
    pk = re.search(r"/admin/runs/(\d+)/", page.url).group(1)
    assert "created" in page.inner_text(".messages")
    assert call(site, "GET", f"/api/runs/{pk}/", token=None).json()["run_number"] == 4242
    run_id = page.locator(".row", has=page.locator("label[for=f-run_id]")).locator(".readonly")
    assert run_id.inner_text().strip() == pk

    # Edit: a non-integer run number is refused next to its field, in the API's words.
    for wrong in ("abc", "1.5"):
        page.fill("#f-run_number", wrong)
        with page.expect_navigation():
            page.get_by_role("button", name="Save").click()
        assert page.inner_text("ul.errorlist#e-run_number").strip() == "A valid integer is required.", wrong
        assert page.locator(".row.has-error").count() == 1
        assert page.input_value("#f-run_number") == wrong  # the form keeps what was typed
        assert run_id.inner_text().strip() == pk, "the read-only run id is lost when the form comes back"
        assert call(site, "GET", f"/api/runs/{pk}/", token=None).json()["run_number"] == 4242
    shot(page, "admin-form-error")
    page.fill("#f-run_number", "4243")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(rf"/admin/runs/{pk}/\?notice="))
    assert "saved" in page.inner_text(".messages")
    assert page.input_value("#f-run_number") == "4243"
    page.goto(site.http_url + "/runs/")
    assert column(page, "run_number") == ["4243"]

    # Delete through the confirmation page.
    page.goto(f"{site.http_url}/admin/runs/{pk}/")
    page.get_by_role("link", name="Delete…").click()
    page.wait_for_url(f"{site.http_url}/admin/runs/{pk}/delete/")
    with page.expect_navigation(url=re.compile(r"/admin/runs/\?notice=")) as nav:
        page.get_by_role("button", name="Delete").click()
    assert nav.value.status == 200, f"{page.url}: HTTP {nav.value.status}"
    assert "deleted" in page.inner_text(".messages")
    call(site, "GET", f"/api/runs/{pk}/", token=None, expect=404)
    page.goto(site.http_url + "/runs/")
    assert row_keys(page) == [] and count_text(page) == "No rows"
    tab.assert_clean()


def test_admin_creates_a_user_and_rotates_its_token(fresh, tab):
    site = fresh
    page = tab.page
    sign_in(tab, site)
    carol = f"carol-{uuid.uuid4().hex[:6]}"
    page.goto(site.http_url + "/admin/users/")
    form = page.locator("section.new-user form")
    form.locator("input[name=username]").fill(carol)
    form.get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/admin/users/\?show="))
    old = page.inner_text(f"span#token-{carol}").strip()
    assert re.fullmatch(r"[0-9a-f]{40}", old)
    call(site, "POST", "/api/state/next-run-number/", token=old, expect=200)
    shot(page, "admin-users")
    page.locator(f'tr[data-key="{carol}"]').get_by_role("button", name="Rotate token").click()
    page.wait_for_url(re.compile(r"/admin/users/\?show=.*notice="))
    new = page.inner_text(f"span#token-{carol}").strip()
    assert re.fullmatch(r"[0-9a-f]{40}", new) and new != old
    call(site, "POST", "/api/state/next-run-number/", token=old, expect=401)
    call(site, "POST", "/api/state/next-run-number/", token=new, expect=200)
    tab.assert_clean()


def test_sign_out_revokes_the_session_cookie(fresh, tab):
    site = fresh
    page = tab.page
    sign_in(tab, site)
    cookie = admin_cookie(tab)
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{site.http_url}/admin/login/?out=1")
    assert "You are signed out." in page.inner_text(".messages")
    assert auth.ADMIN_COOKIE not in {c["name"] for c in tab.context.cookies()}
    tab.context.add_cookies([cookie])  # as if it had been copied before signing out
    page.goto(site.http_url + "/admin/")
    assert page.url.startswith(f"{site.http_url}/admin/login/")
    assert page.locator(".admin-bar").count() == 0
    with requests.Session() as s:
        s.trust_env = False
        resp = s.get(site.http_url + "/admin/users/", cookies={auth.ADMIN_COOKIE: cookie["value"]},
                     allow_redirects=False, timeout=10)  # fmt: skip
    assert resp.status_code == 303 and resp.headers["Location"].startswith("/admin/login/")
    tab.assert_clean()


# -- 6. CSRF -------------------------------------------------------------------------------------------


class _Attacker(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = self.server.pages.get(self.path, "").encode()  # type: ignore[attr-defined]
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if self.path.startswith("/null-"):  # an opaque origin: its form posts say "Origin: null"
            self.send_header("Content-Security-Policy", "sandbox allow-forms allow-scripts")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def attacker():
    """A second local web site (another port): pages that auto-submit forms to swf-lite."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Attacker)
    srv.pages = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def forged(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
    return (f'<!doctype html><title>Cute cats</title><form id="f" method="post" action="{action}">{inputs}</form>'
            "<script>document.getElementById('f').submit()</script>")  # fmt: skip


def test_forged_cross_site_forms_are_refused(fresh, tab, attacker):
    site = fresh
    page = tab.page
    run = new_run(site)
    sign_in(tab, site)
    real_csrf = page.locator(".admin-bar input[name=csrf]").input_value()
    mallory = f"mallory-{uuid.uuid4().hex[:6]}"
    evil = f"http://127.0.0.1:{attacker.server_address[1]}"
    reset, users = site.http_url + "/admin/actions/reset/", site.http_url + "/admin/users/"
    new_user = {"username": mallory, "is_staff": "on"}
    attacker.pages.update({
        "/reset": forged(reset, {"csrf": "guessed"}),
        "/reset-no-token": forged(reset, {}),
        "/user": forged(users, {"csrf": "guessed", **new_user}),
        # Even a leaked CSRF token does not help another site: its Origin is refused.
        "/reset-leaked": forged(reset, {"csrf": real_csrf}),
        "/user-leaked": forged(users, {"csrf": real_csrf, **new_user}),
    })  # fmt: skip

    def unchanged(why: str) -> None:
        assert call(site, "GET", "/api/runs/", token=None).json() == [run], f"{why}: data changed"
        site.store.connect()
        assert auth.user(site.store, mallory) is None, f"{why}: user created"

    for path in ("/reset", "/reset-no-token", "/user", "/reset-leaked", "/user-leaked"):
        target = users if "user" in path else reset
        with page.expect_response(lambda r, t=target: r.url == t and r.request.method == "POST") as got:
            page.goto(evil + path)
        # 403 (not a redirect to the login page): the session cookie went along and the check refused it.
        assert got.value.status == 403, path
        page.wait_for_url(target)
        assert "Request refused" in page.inner_text("main"), path
        unchanged(path)
    shot(page, "csrf-refused")

    # A form from a sandboxed page has Origin "null": the CSRF token still stops it.
    for name, target, fields in (("/null-reset", reset, {"csrf": "guessed"}),
                                 ("/null-user", users, {"csrf": "guessed", **new_user})):  # fmt: skip
        attacker.pages[name] = forged(target, fields)
        with page.expect_response(lambda r, t=target: r.url == t and r.request.method == "POST") as got:
            page.goto(evil + name)
        assert got.value.status in (303, 403), name  # refused, or no session sent at all (login page)
        unchanged(name)

    # On swf-lite's own page, a stale CSRF value is refused by the token check itself.
    page.goto(site.http_url + "/admin/")
    assert page.locator(".admin-bar").count() == 1, "signed out by the forged posts"
    form = page.locator("form[action='/admin/actions/reset/']")
    form.locator("input[name=csrf]").evaluate("el => { el.value = 'stale'; }")
    form.locator("input[name=confirm]").check()  # deleting everything asks for a tick first
    with page.expect_navigation() as nav:
        form.get_by_role("button").click()
    assert nav.value.status == 403
    assert "CSRF" in page.inner_text("main")
    unchanged("stale token")

    # The real form still works.
    page.goto(site.http_url + "/admin/")
    page.locator("form[action='/admin/actions/reset/'] input[name=confirm]").check()
    page.locator("form[action='/admin/actions/reset/']").get_by_role("button").click()
    page.wait_for_url(re.compile(r"/admin/\?notice="))
    assert call(site, "GET", "/api/runs/", token=None).json() == []


def test_forged_login_form_is_refused(fresh, tab, attacker):
    """Login CSRF: another site cannot sign the browser in (as the attacker's account)."""
    site = fresh
    page = tab.page
    tab.goto("/admin/login/")  # the browser holds a login form cookie of its own
    evil = f"http://127.0.0.1:{attacker.server_address[1]}"
    attacker.pages["/login"] = forged(site.http_url + "/admin/login/",
                                      {"csrf": "guessed", "username": "admin", "token": site.token})  # fmt: skip
    with page.expect_response(lambda r: r.url == site.http_url + "/admin/login/" and r.request.method == "POST") as got:
        page.goto(evil + "/login")
    assert got.value.status == 403
    assert auth.ADMIN_COOKIE not in {c["name"] for c in tab.context.cookies()}


# -- 7. stored markup ----------------------------------------------------------------------------------


def assert_inert(tab: Tab, page: Page, literal: str) -> None:
    """The payload is shown as text: no element it would create, nothing ran, no CSP report."""
    assert page.evaluate("typeof window.__pwned") == "undefined", page.url
    assert page.locator('img[src="x"]').count() == 0, page.url
    assert page.evaluate("Array.from(document.scripts).map(s => s.getAttribute('src'))") == ["/static/app.js"]
    assert literal in page.inner_text("main"), page.url
    tab.assert_clean(page)


def test_stored_markup_is_shown_not_run(fresh, tab):
    site = fresh
    page = tab.page
    agent_name = '<b>x</b><img src=x onerror="window.__pwned=3">'
    agent = heartbeat(site, agent_name)
    log = new_log(site, PWNED, levelname="ERROR", level=40, instance=agent_name)
    msg = new_message(site, "stf_gen", {"note": PWNED}, sender=agent_name)
    script = "<script>window.__pwned=1</script>"

    for path, literal in (
        ("/logs/", script),
        (f"/logs/{log['id']}/", PWNED),
        ("/messages/", agent_name),  # the sender column
        (f"/messages/{msg['message_id']}/", script),
        ("/agents/", agent_name),
        ("/", agent_name),
        ("/logs/summary/", script),
    ):
        tab.goto(path)
        assert_inert(tab, page, literal)
    assert page.locator("table.data").get_by_text(agent_name, exact=True).count() >= 1

    tab.goto("/agents/")
    with page.expect_navigation() as nav:
        page.locator(f'section#rows tr[data-key="{agent["id"]}"] a.rowlink').click()
    assert nav.value.status == 200
    assert page.title() == f"Agent {agent_name} · swf-lite"
    assert_inert(tab, page, agent_name)
    assert page.locator("main h1").inner_text() == f"Agent {agent_name}"

    tab.goto("/")
    assert page.locator("#overview").get_by_text(script).count() >= 1  # recent warnings and errors
    shot(page, "markup-dashboard")

    # Rows that arrive live go through innerHTML: still text.
    tab.goto("/logs/")
    page.wait_for_selector("#live-state.on", timeout=LIVE_MS)
    page.evaluate(WATCH_ARRIVALS)
    second = new_log(site, PWNED + " again", levelname="ERROR", level=40, instance=agent_name)
    wait_arrived(page, "rows", str(second["id"]))
    assert_inert(tab, page, script + '<img src=x onerror="window.__pwned=2"> again')

    # The admin's edit form echoes the values into attributes and textareas.
    sign_in(tab, site)
    tab.goto(f"/admin/systemagents/{agent['id']}/")
    assert page.input_value("#f-instance_name") == agent_name
    tab.goto(f"/admin/logs/{log['id']}/")
    assert page.input_value("#f-message") == PWNED
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator('img[src="x"]').count() == 0
    tab.assert_clean()


# -- 8. keyboard -----------------------------------------------------------------------------------


def focused(page: Page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const r = el.getBoundingClientRect();
            return {tag: el.tagName.toLowerCase(), cls: el.className, text: el.innerText || '',
                    href: el.getAttribute('href'), name: el.getAttribute('name'),
                    inNav: !!el.closest('header.top nav'), inMain: !!el.closest('main'),
                    visible: el.matches(':focus-visible'), outline: getComputedStyle(el).outlineStyle,
                    left: r.left, top: r.top, width: r.width};
        }"""
    )


def test_keyboard_reaches_skip_link_nav_and_submits_filters(fresh, tab):
    site = fresh
    run = new_run(site)
    files = [new_stf(site, run, f"swf.kb.{i:06d}.stf") for i in range(3)]
    page = tab.page
    tab.goto("/stf-files/")

    page.keyboard.press("Tab")
    skip = focused(page)
    assert skip["tag"] == "a" and "skip" in skip["cls"] and skip["href"] == "#main"
    assert skip["visible"] and skip["outline"] != "none"
    assert skip["left"] >= 0 and skip["top"] >= 0 and skip["width"] > 0, "the focused skip link is off screen"
    page.keyboard.press("Tab")
    assert focused(page)["href"] == "/"  # the brand
    page.keyboard.press("Tab")
    nav = focused(page)
    assert nav["tag"] == "a" and nav["inNav"] and nav["href"] == "/" and nav["visible"] and nav["outline"] != "none"
    shot(page, "keyboard-nav-focus")
    for _ in range(len(MAIN_NAV) + 2):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.tagName") == "SUMMARY":
            break
    assert page.evaluate("document.activeElement.tagName") == "SUMMARY", "More is not reachable by Tab"
    page.keyboard.press("Enter")
    assert page.locator("details.more").get_attribute("open") is not None
    page.keyboard.press("Tab")
    item = focused(page)
    assert item["tag"] == "a" and item["inNav"] and item["href"] == "/workflow-definitions/" and item["visible"]
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{site.http_url}/workflow-definitions/"

    # The skip link moves focus past the navigation.
    tab.goto("/stf-files/")
    page.keyboard.press("Tab")
    assert "skip" in focused(page)["cls"]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.http_url}/stf-files/#main")
    page.keyboard.press("Tab")
    assert focused(page)["inMain"], "Tab after the skip link should land inside main"

    # Reach the search box by Tab, type, press Enter: the filter form submits.
    for _ in range(40):
        page.keyboard.press("Tab")
        if focused(page)["name"] == "q":
            break
    assert focused(page)["name"] == "q", "search box not reachable by Tab"
    page.keyboard.type("kb.000001")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "q=kb.000001" in page.url
    assert row_keys(page) == [files[1]["file_id"]]
    page.focus("form.filters select[name=status]")
    page.keyboard.press("ArrowDown")  # "registered (1)" (the only status present)
    page.focus("form.filters input[name=q]")
    page.keyboard.press("Control+a")
    page.keyboard.press("Delete")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "status=registered" in page.url
    assert count_text(page) == "Rows 1–3 of 3"
    tab.assert_clean()
