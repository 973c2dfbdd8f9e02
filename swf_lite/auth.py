"""Users and DRF-style tokens.

A token is looked up by its SHA-256 (so the lookup leaks nothing about the token) and then
compared with :func:`hmac.compare_digest`. The token itself is kept so that ``token <user>``
prints the same value on repeat, like ``manage.py get_token``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from swf_lite import timefmt
from swf_lite.db import Store

TOKEN_RE = re.compile(r"^[0-9a-f]{40}$")


class AuthFailed(Exception):
    """401 with DRF's wording in ``detail``."""

    def __init__(self, detail: str):
        super().__init__(detail)
        self.detail = detail


NOT_PROVIDED = "Authentication credentials were not provided."


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def get_or_create_token(store: Store, username: str, is_staff: bool = False) -> str:
    """The user's token, creating user and token on first use. ``is_staff`` makes the user staff
    (an existing one too: the default user is always staff); it never takes the flag away."""
    username = username.strip()
    if not username or len(username) > 150:
        raise ValueError("username must be 1 to 150 characters")
    User = store.models["_user"]
    with store.db.connection_context(), store.atomic():
        user = User.get_or_none(User.username == username)
        if user is None:
            token = secrets.token_hex(20)
            User.create(username=username, token=token, token_hash=_digest(token), is_staff=is_staff,
                        created_at=timefmt.utcnow())  # fmt: skip
            return token
        if is_staff and not user.is_staff:
            User.update(is_staff=True).where(User.username == username).execute()
        return user.token


def token_from_url(db_url: str, username: str, is_staff: bool = False) -> str:
    """``get_or_create_token`` for a store that no server of this process has open (CLI, demo)."""
    store = Store(db_url).open()
    try:
        return get_or_create_token(store, username, is_staff=is_staff)
    finally:
        store.close()


def parse_header(header: str | None) -> str | None:
    """The token from an ``Authorization`` header, None if there is none; AuthFailed if malformed."""
    if not header:
        return None
    parts = header.split()
    if not parts or parts[0].lower() != "token":
        return None  # another scheme: not ours, treated as no credentials
    if len(parts) == 1:
        raise AuthFailed("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise AuthFailed("Invalid token header. Token string should not contain spaces.")
    return parts[1]


def authenticate(store: Store, header: str | None) -> str:
    """The username for a valid ``Authorization: Token <t>`` header, else AuthFailed."""
    token = parse_header(header)
    if token is None:
        raise AuthFailed(NOT_PROVIDED)
    row = store.user_by_token_hash(_digest(token))
    if row is None or not hmac.compare_digest(row[1].encode(), token.encode()):
        raise AuthFailed("Invalid token.")
    return row[0]


SESSION_COOKIE = "swf_lite_session"


def _session_mac(token: str, username: str) -> str:
    return hmac.new(token.encode(), f"swf-lite session {username}".encode(), hashlib.sha256).hexdigest()


def session_value(store: Store, username: str) -> str:
    """A browser session cookie value for ``username``: keyed by the user's token, so it needs no
    server-side secret and stops working if the token changes."""
    User = store.models["_user"]
    token = User.select(User.token).where(User.username == username).scalar()
    return f"{username}:{_session_mac(token, username)}"


def authenticate_session(store: Store, value: str | None) -> str:
    """The username for a valid session cookie value, else AuthFailed."""
    username, _, mac = (value or "").rpartition(":")
    if not username or not mac:
        raise AuthFailed(NOT_PROVIDED)
    User = store.models["_user"]
    token = User.select(User.token).where(User.username == username).scalar()
    if token is None or not hmac.compare_digest(_session_mac(token, username), mac):
        raise AuthFailed("Invalid session.")
    return username


# -- users and browser sessions (the admin) -------------------------------------------------------

ADMIN_COOKIE = "swf_lite_admin"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class User:
    username: str
    token: str
    is_staff: bool
    created_at: dt.datetime | None = None


def users(store: Store) -> list[User]:
    M = store.models["_user"]
    rows = M.select(M.username, M.token, M.is_staff, M.created_at).order_by(M.username).tuples()
    return [User(*row) for row in rows]


def user(store: Store, username: str) -> User | None:
    M = store.models["_user"]
    row = M.select(M.username, M.token, M.is_staff, M.created_at).where(M.username == username).tuples().first()
    return User(*row) if row else None


def check_login(store: Store, username: str, token: str) -> User | None:
    """The user if ``token`` is theirs (compared in constant time), else None."""
    found = user(store, username.strip())
    if found is None or not hmac.compare_digest(found.token.encode(), token.strip().encode()):
        return None
    return found


def rotate_token(store: Store, username: str) -> str:
    """A new token for ``username``: the old one, and every browser session signed with it, stop working."""
    M = store.models["_user"]
    token = secrets.token_hex(20)
    with store.atomic():
        M.update(token=token, token_hash=_digest(token)).where(M.username == username).execute()
    return token


def set_staff(store: Store, username: str, is_staff: bool) -> None:
    M = store.models["_user"]
    M.update(is_staff=is_staff).where(M.username == username).execute()


def start_session(store: Store, who: User, seconds: int = SESSION_SECONDS) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new browser session. The cookie is ``<id>.<mac>``: the mac is keyed
    by the user's token (a rotated token ends every session) and only the id's hash is stored."""
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    now = timefmt.utcnow()
    S = store.models["_session"]
    with store.atomic():
        S.delete().where(S.expires_at < now).execute()  # forget expired ones while here
        S.insert(id_hash=_digest(sid), username=who.username, csrf=csrf, created_at=now,
                 expires_at=now + dt.timedelta(seconds=seconds)).execute()  # fmt: skip
    return f"{sid}.{_mac(who.token, sid)}", csrf


def _mac(token: str, sid: str) -> str:
    return hmac.new(token.encode(), f"swf-lite admin {sid}".encode(), hashlib.sha256).hexdigest()


def session(store: Store, cookie: str | None) -> tuple[User, str] | None:
    """(user, CSRF token) of a live session cookie; None if missing, forged, expired or logged out."""
    sid, _, mac = (cookie or "").partition(".")
    if not sid or not mac:
        return None
    S = store.models["_session"]
    row = S.select(S.username, S.csrf, S.expires_at).where(S.id_hash == _digest(sid)).tuples().first()
    if row is None or row[2] < timefmt.utcnow():
        return None
    who = user(store, row[0])
    if who is None or not hmac.compare_digest(_mac(who.token, sid), mac):
        return None
    return who, row[1]


def end_session(store: Store, cookie: str | None) -> None:
    sid = (cookie or "").partition(".")[0]
    if sid:
        S = store.models["_session"]
        S.delete().where(S.id_hash == _digest(sid)).execute()
