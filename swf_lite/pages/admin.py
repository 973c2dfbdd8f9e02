"""The browser admin under ``/admin/``: sign in with a username and that user's API token, then
browse, create, edit and delete records of every resource through forms derived from the catalog
(the service validates: the messages are the API's), manage users and tokens, set the counters and
load the demo data.

Sessions: a signed, HttpOnly, SameSite=Strict cookie with an expiry, revoked for real on logout
(:mod:`swf_lite.auth`). Every state-changing form carries the session's CSRF token (the login form a
double-submit token of its own) and a cross-site ``Origin`` is refused. Only staff users get in.
"""

from __future__ import annotations

import hmac
import json
import secrets
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import bottle

from swf_lite import auth, counters, seeding
from swf_lite.catalog import BY_NAME, RESOURCES, F, Resource
from swf_lite.context import Context
from swf_lite.errors import Invalid, NotFound
from swf_lite.pages.render import escape, label, page, url
from swf_lite.pages.site import BY_RESOURCE
from swf_lite.pages.views import Views

LOGIN_CSRF_COOKIE = "swf_lite_login"
ADMIN_PAGE_SIZE = 50
TEXTAREA_KINDS = ("text", "json")


class Admin:
    def __init__(self, ctx: Context, views: Views):
        self.ctx = ctx
        self.store = ctx.store
        self.service = ctx.service
        self.views = views

    # -- who is signed in ----------------------------------------------------------------------

    def current(self) -> tuple[auth.User, str] | None:
        self.store.connect()
        return auth.session(self.store, bottle.request.get_cookie(auth.ADMIN_COOKIE))

    def whoami(self) -> auth.User | None:
        found = self.current()
        return found[0] if found else None

    def staff(self) -> tuple[auth.User, str]:
        """The signed-in staff user and the session's CSRF token; otherwise off to the login page."""
        found = self.current()
        if found is None:
            target = bottle.request.fullpath + (
                f"?{bottle.request.query_string}" if bottle.request.query_string else ""
            )
            raise bottle.HTTPResponse(status=303, headers={"Location": url("/admin/login/", next=target)})
        if not found[0].is_staff:
            raise page("message", 403, title="Staff only", here="/admin/", user=found[0], csrf=found[1],
                       text="This account is not a staff user. Ask a staff user to grant it access.")  # fmt: skip
        return found

    def checked(self) -> tuple[auth.User, str]:
        """``staff()`` for a POST: the CSRF token must match and the request must come from this site."""
        who, csrf = self.staff()
        self._same_origin()
        sent = bottle.request.forms.getunicode("csrf") or ""
        if not hmac.compare_digest(sent.encode(), csrf.encode()):
            raise page("message", 403, title="Request refused", here="/admin/", user=who, csrf=csrf,
                       text="This form is out of date or did not come from this site (CSRF check). "
                            "Go back, reload the page and try again.")  # fmt: skip
        return who, csrf

    @staticmethod
    def _same_origin() -> None:
        origin = bottle.request.get_header("Origin")
        if origin and origin != "null":
            parts = bottle.request.urlparts
            if urllib.parse.urlsplit(origin).netloc != parts.netloc:
                raise page("message", 403, title="Request refused", here="/admin/",
                           text="Cross-site form posts are refused.")  # fmt: skip

    # -- login / logout ------------------------------------------------------------------------

    def login_form(self, error: str = "", username: str = "", status: int = 200) -> bottle.HTTPResponse:
        token = secrets.token_urlsafe(24)
        resp = page("login", status, title="Sign in", here="/admin/", error=error, username=username, csrf=token,
                    out=bool(bottle.request.query.getunicode("out")),
                    next=_safe_next(_next_param()))  # fmt: skip
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, path="/admin/", httponly=True, samesite="strict", max_age=3600)
        return resp

    def login(self) -> bottle.HTTPResponse:
        self._same_origin()
        forms = bottle.request.forms
        sent, kept = forms.getunicode("csrf") or "", bottle.request.get_cookie(LOGIN_CSRF_COOKIE) or ""
        if not kept or not hmac.compare_digest(sent.encode(), kept.encode()):
            return self.login_form("The sign-in form expired; please try again.", status=403)
        username = (forms.getunicode("username") or "").strip()
        self.store.connect()
        who = auth.check_login(self.store, username, forms.getunicode("token") or "")
        if who is None:
            return self.login_form("Unknown username or wrong token.", username, 401)
        if not who.is_staff:
            return self.login_form(f"{username} is not a staff user.", username, 403)
        cookie, _ = auth.start_session(self.store, who)
        resp = bottle.HTTPResponse(status=303, headers={"Location": _safe_next(forms.getunicode("next"))})
        resp.set_cookie(auth.ADMIN_COOKIE, cookie, path="/", httponly=True, samesite="strict",
                        max_age=auth.SESSION_SECONDS, secure=bottle.request.urlparts.scheme == "https")  # fmt: skip
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/admin/")
        return resp

    def logout(self) -> bottle.HTTPResponse:
        self.checked()
        auth.end_session(self.store, bottle.request.get_cookie(auth.ADMIN_COOKIE))
        resp = bottle.HTTPResponse(status=303, headers={"Location": "/admin/login/?out=1"})
        resp.delete_cookie(auth.ADMIN_COOKIE, path="/")
        return resp

    # -- index and actions ---------------------------------------------------------------------

    def index(self) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        rows = [{"name": r.name, "title": r.label, "count": self.service.count(r), "url": f"/admin/{r.name}/",
                 "add": f"/admin/{r.name}/add/"} for r in RESOURCES]  # fmt: skip
        return page("admin_index", title="Admin", here="/admin/", user=who, csrf=csrf, rows=rows,
                    counters=self.service.next_values(), notice=_notice())  # fmt: skip

    def set_counters(self) -> bottle.HTTPResponse:
        self.checked()
        forms = bottle.request.forms
        wanted: dict[str, int] = {}
        try:
            for c in counters.COUNTERS:
                raw = (forms.getunicode(c.key) or "").strip()
                if raw:
                    wanted[c.key] = int(raw)
            values = counters.normalize(wanted)
        except ValueError as exc:
            return _see("/admin/", f"Counters not changed: {exc}", error=True)
        if values:
            self.service.set_counters(values)
        return _see("/admin/", "Counters set." if values else "No counter value given.")

    def load_demo(self) -> bottle.HTTPResponse:
        self.checked()
        if not self.service.is_empty():
            return _see("/admin/", "The demo data loads only into an empty store: reset the data first.", error=True)
        loaded = seeding.load_file(self.service, seeding.demo_path())
        return _see("/admin/", f"Demo data loaded: {sum(loaded.values())} records.")

    def reset_data(self) -> bottle.HTTPResponse:
        self.checked()
        if bottle.request.forms.getunicode("confirm") != "on":
            return _see("/admin/", "Nothing deleted: tick the box to confirm.", error=True)
        self.ctx.reset()
        return _see("/admin/", "All records deleted; counters restarted.")

    # -- records -------------------------------------------------------------------------------

    def records(self, name: str) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        r = _resource(name)
        q = bottle.request.query
        number = max(int(q.getunicode("page") or 1) if (q.getunicode("page") or "1").isdigit() else 1, 1)
        search = (q.getunicode("q") or "").strip()
        rows = self.service.list(r, limit=ADMIN_PAGE_SIZE, offset=(number - 1) * ADMIN_PAGE_SIZE, search=search)
        table = self.views._table(r, rows, f"/admin/{r.name}/", {"q": search}, number, ADMIN_PAGE_SIZE)
        for row, raw in zip(table["rows"], rows.rows):
            row["url"] = f"/admin/{r.name}/{urllib.parse.quote(str(raw[r.pk.name]), safe='')}/"
        return page("admin_list", title=f"Admin · {_plural(r)}", here="/admin/", user=who, csrf=csrf, r=r, q=search,
                    plural=_plural(r),
                    notice=_notice(), **table)  # fmt: skip

    def add(self, name: str) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        r = _resource(name)
        values = {f.name: _form_value(f, None if f.required else f.default) for f in r.all_fields}
        return self._form(r, who, csrf, values, {}, key=None)

    def create(self, name: str) -> bottle.HTTPResponse:
        who, csrf = self.checked()
        r = _resource(name)
        data, errors = _read_form(r, creating=True)
        try:
            if errors:  # unparsable JSON: still show what the service says of the other fields
                self.service.clean(r, data, creating=True)
            else:
                out = self.service.create(r, data)
                return _see(f"/admin/{r.name}/{urllib.parse.quote(str(out[r.pk.name]), safe='')}/",
                            f"{r.label} {out.get(r.title)} created.")  # fmt: skip
        except Invalid as exc:
            errors = {**exc.errors, **errors}
        return self._form(
            r, who, csrf, _echo(r, bottle.request.forms), errors, key=None
        )  # 200, like Django: a form to fix

    def edit(self, name: str, key: str) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        r = _resource(name)
        row = self._row(r, key)
        values = {f.name: _form_value(f, row.get(f.name)) for f in r.all_fields}
        return self._form(r, who, csrf, values, {}, key=key)

    def update(self, name: str, key: str) -> bottle.HTTPResponse:
        who, csrf = self.checked()
        r = _resource(name)
        row = self._row(r, key)
        data, errors = _read_form(r, creating=False)
        try:
            if errors:
                self.service.clean(r, data, creating=False)
            else:
                out = self.service.update(r, key, data, partial=False)
                return _see(
                    f"/admin/{r.name}/{urllib.parse.quote(key, safe='')}/", f"{r.label} {out.get(r.title)} saved."
                )
        except Invalid as exc:
            errors = {**exc.errors, **errors}
        shown = {f.name: _form_value(f, row.get(f.name)) for f in r.all_fields if f.read_only}  # not posted
        return self._form(r, who, csrf, {**_echo(r, bottle.request.forms), **shown}, errors, key=key)

    def confirm_delete(self, name: str, key: str) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        r = _resource(name)
        row = self._row(r, key)
        return page("admin_delete", title=f"Delete {r.label}", here="/admin/", user=who, csrf=csrf, r=r,
                    key=urllib.parse.quote(key, safe=""),
                    what=str(row.get(r.title)))  # fmt: skip

    def delete(self, name: str, key: str) -> bottle.HTTPResponse:
        self.checked()
        r = _resource(name)
        row = self._row(r, key)
        self.service.delete(r, key)
        return _see(f"/admin/{r.name}/", f"{r.label} {row.get(r.title)} deleted.")

    def _row(self, r: Resource, key: str) -> dict[str, Any]:
        try:
            return self.service.get(r, key)
        except NotFound:
            raise page("message", 404, title="Not found", here="/admin/",
                       text=f"No {r.label} with key {key}.") from None  # fmt: skip

    def _form(self, r: Resource, who: auth.User, csrf: str, values: Mapping[str, str], errors: Mapping[str, list[str]],
              key: str | None, status: int = 200) -> bottle.HTTPResponse:  # fmt: skip
        rows = []
        for f in r.all_fields:
            if f.read_only and key is None:
                continue
            rows.append({"name": f.name, "label": label(f.name), "widget": _widget(f, values.get(f.name, ""), key),
                         "errors": errors.get(f.name, []), "help": _help(f)})  # fmt: skip
        action = f"/admin/{r.name}/add/" if key is None else f"/admin/{r.name}/{urllib.parse.quote(key, safe='')}/"
        title = f"Add {r.label}" if key is None else f"Edit {r.label}"
        return page("admin_form", status, title=title, here="/admin/", user=who, csrf=csrf, r=r, rows=rows,
                    plural=_plural(r),
                    action=action, key=key, general=errors.get("non_field_errors", []), notice=_notice(),
                    delete_url=None if key is None else f"{action}delete/")  # fmt: skip

    # -- users ---------------------------------------------------------------------------------

    def users(self) -> bottle.HTTPResponse:
        who, csrf = self.staff()
        shown = bottle.request.query.getunicode("show") or ""
        return page("admin_users", title="Admin · users", here="/admin/", user=who, csrf=csrf,
                    users=[{"u": u, "q": urllib.parse.quote(u.username, safe="")} for u in auth.users(self.store)],
                    shown=shown, notice=_notice())  # fmt: skip

    def create_user(self) -> bottle.HTTPResponse:
        self.checked()
        forms = bottle.request.forms
        username = (forms.getunicode("username") or "").strip()
        if not username or len(username) > 150:
            return _see("/admin/users/", "A username of 1 to 150 characters is needed.", error=True)
        if auth.user(self.store, username) is not None:
            return _see("/admin/users/", f"{username} already exists.", error=True)
        auth.get_or_create_token(self.store, username, is_staff=forms.getunicode("is_staff") == "on")
        return _see(url("/admin/users/", show=username), f"User {username} created.")

    def rotate(self, username: str) -> bottle.HTTPResponse:
        who, _ = self.checked()
        if auth.user(self.store, username) is None:
            return _see("/admin/users/", f"No user {username}.", error=True)
        auth.rotate_token(self.store, username)
        if username == who.username:  # our own session was signed with the old token
            return _see("/admin/login/", "Your token changed: sign in again with the new one "
                        "(python -m swf_lite token <user> prints it).")  # fmt: skip
        return _see(url("/admin/users/", show=username), f"New token for {username}; the old one no longer works.")

    def staff_flag(self, username: str) -> bottle.HTTPResponse:
        who, _ = self.checked()
        wanted = bottle.request.forms.getunicode("is_staff") == "on"
        if username == who.username and not wanted:
            return _see("/admin/users/", "You cannot take away your own staff flag.", error=True)
        auth.set_staff(self.store, username, wanted)
        return _see("/admin/users/", f"{username} is {'now' if wanted else 'no longer'} a staff user.")


# -- forms -----------------------------------------------------------------------------------------


def _plural(r: Resource) -> str:
    p = BY_RESOURCE.get(r.name)
    return p.title if p else r.label + "s"


def _resource(name: str) -> Resource:
    r = BY_NAME.get(name)
    if r is None:
        raise page("message", 404, title="Not found", here="/admin/", text=f"No resource {name}.")
    return r


def _form_value(f: F, value: Any) -> str:
    """A stored value as the text a form field shows."""
    if value is None:
        return ""
    if f.kind == "json":
        return json.dumps(value, ensure_ascii=False, indent=2)
    if f.kind == "bool":
        return "on" if value else ""
    return str(value)


def _echo(r: Resource, forms: Any) -> dict[str, str]:
    return {f.name: forms.getunicode(f.name) or "" for f in r.all_fields}


def _read_form(r: Resource, creating: bool) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The form as the API body the service validates: empty optional fields are null (or their
    default on create), JSON fields are parsed, checkboxes are booleans."""
    forms = bottle.request.forms
    data: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for f in r.all_fields:
        if f.read_only:
            continue
        raw = forms.getunicode(f.name)
        if f.kind == "bool":
            data[f.name] = raw == "on"
            continue
        raw = raw or ""
        if raw.strip() == "":
            if f.kind in ("str", "text") and f.allow_blank and not f.null:
                data[f.name] = raw  # cleared on purpose
            elif f.null:
                data[f.name] = None  # an empty optional field is null
            # else left out: a required field is reported, an optional one keeps its default
            continue
        if f.kind == "json":
            try:
                data[f.name] = json.loads(raw)
            except ValueError:
                errors[f.name] = ["Value must be valid JSON."]
            continue
        data[f.name] = raw
    return data, errors


def _widget(f: F, value: str, key: str | None) -> str:
    """The input for one field (escaped HTML)."""
    name = escape(f.name)
    if f.read_only or (f.name == "id" and key is not None) or (key is not None and f.unique and f.read_only):
        return f'<span class="readonly">{escape(value) or "—"}</span>'
    required = " required" if f.required and f.kind != "bool" else ""
    if f.choices is not None:
        options = ['<option value="">—</option>'] if f.null else []
        options += [f'<option value="{escape(c)}"{" selected" if str(c) == value else ""}>{escape(c)}</option>'
                    for c in f.choices]  # fmt: skip
        return f'<select id="f-{name}" name="{name}"{required}>{"".join(options)}</select>'
    if f.kind == "bool":
        return f'<input id="f-{name}" type="checkbox" name="{name}"{" checked" if value == "on" else ""}>'
    if f.kind in TEXTAREA_KINDS:
        return f'<textarea id="f-{name}" name="{name}" rows="{6 if f.kind == "json" else 3}">{escape(value)}</textarea>'
    # numbers as text with a numeric keyboard: the server's validation (the API's wording) decides
    kind = "url" if f.kind == "url" else "text"
    step = {"int": ' inputmode="numeric"', "int64": ' inputmode="numeric"', "float": ' inputmode="decimal"'}.get(
        f.kind, ""
    )
    maxlength = f' maxlength="{f.max_length}"' if f.max_length and f.kind == "str" else ""
    placeholder = ' placeholder="YYYY-MM-DDThh:mm:ssZ"' if f.kind == "datetime" else ""
    return (f'<input id="f-{name}" type="{kind}" name="{name}" value="{escape(value)}"{step}{maxlength}'
            f"{placeholder}{required}>")  # fmt: skip


def _help(f: F) -> str:
    bits = [f.kind if f.kind != "fk" else f"key of a {BY_NAME[str(f.to)].label} ({f.to_field or 'its id'})"]
    if f.required:
        bits.append("required")
    elif f.null:
        bits.append("empty = null")
    if f.max_length:
        bits.append(f"at most {f.max_length} characters")
    return ", ".join(bits)


def _notice() -> dict[str, Any] | None:
    q = bottle.request.query
    text = q.getunicode("notice")
    return {"text": text, "error": q.getunicode("level") == "error"} if text else None


def _see(target: str, notice: str, error: bool = False) -> bottle.HTTPResponse:
    """Redirect after a POST, carrying a one-line notice for the next page."""
    sep = "&" if "?" in target else "?"
    query = urllib.parse.urlencode({"notice": notice, **({"level": "error"} if error else {})})
    return bottle.HTTPResponse(status=303, headers={"Location": f"{target}{sep}{query}"})


def _next_param() -> str | None:
    return bottle.request.query.getunicode("next") or bottle.request.forms.getunicode("next")


def _safe_next(target: str | None) -> str:
    """Only same-site paths (no ``//host`` or scheme) are followed after signing in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/admin/"
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return "/admin/"  # browsers drop tabs and newlines from Location: "/\t/evil" would become "//evil"
    return target


def mount(app: bottle.Bottle, ctx: Context, views: Views) -> Admin:
    admin = Admin(ctx, views)
    views.whoami = admin.whoami
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("/admin/", "GET", admin.index),
        ("/admin/login/", "GET", admin.login_form),
        ("/admin/login/", "POST", admin.login),
        ("/admin/logout/", "POST", admin.logout),
        ("/admin/actions/counters/", "POST", admin.set_counters),
        ("/admin/actions/demo/", "POST", admin.load_demo),
        ("/admin/actions/reset/", "POST", admin.reset_data),
        ("/admin/users/", "GET", admin.users),
        ("/admin/users/", "POST", admin.create_user),
        ("/admin/users/<username>/rotate/", "POST", admin.rotate),
        ("/admin/users/<username>/staff/", "POST", admin.staff_flag),
        ("/admin/<name>/", "GET", admin.records),
        ("/admin/<name>/add/", "GET", admin.add),
        ("/admin/<name>/add/", "POST", admin.create),
        ("/admin/<name>/<key>/", "GET", admin.edit),
        ("/admin/<name>/<key>/", "POST", admin.update),
        ("/admin/<name>/<key>/delete/", "GET", admin.confirm_delete),
        ("/admin/<name>/<key>/delete/", "POST", admin.delete),
    ]
    for path, method, handler in routes:
        app.route(path, method, handler)
    return admin
