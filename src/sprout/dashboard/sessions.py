"""Dashboard sign-in: one-time codes handed out to token holders, exchanged for a browser session cookie.

A browser cannot send the API's bearer token on a navigation, and a token in a URL ends up in history
and logs. So `sprout dashboard` (which holds the token) asks for a code that works once within a minute;
the browser trades it for an HttpOnly, SameSite=Strict cookie that opens the dashboard page and nothing
else. Everything lives in the daemon's memory: a restarted daemon signs every browser out.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from http.cookies import CookieError, SimpleCookie

from starlette.types import Scope

COOKIE = "sprout_dashboard"
PAGE = "/dashboard"
LOGIN = "/dashboard/login"
#: The read-only log view of one instance, opened from the page with the same session.
LOGS = "/dashboard/logs"
CODE_SECONDS = 60.0
SESSION_SECONDS = 12 * 3600.0


class DashboardSessions:
    """Issued codes and signed-in sessions, with their expiry times."""

    def __init__(self) -> None:
        self._codes: dict[str, float] = {}
        self._sessions: dict[str, float] = {}
        self._lock = threading.Lock()

    def new_code(self) -> str:
        """A code that signs one browser in once, within `CODE_SECONDS`."""
        code = secrets.token_urlsafe(32)
        with self._lock:
            self._prune(time.monotonic())
            self._codes[code] = time.monotonic() + CODE_SECONDS
        return code

    def redeem(self, code: str) -> str | None:
        """A new session id for a valid, unused code (which is then spent), else None."""
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            if self._codes.pop(code, None) is None:
                return None
            session = secrets.token_urlsafe(32)
            self._sessions[session] = now + SESSION_SECONDS
        return session

    def signed_in(self, scope: Scope) -> bool:
        """True for a request carrying the cookie of a live session."""
        given = _cookie(scope).encode("latin-1")
        if not given:
            return False
        now = time.monotonic()
        with self._lock:
            # Compared in constant time against each live session, like the bearer token (as bytes:
            # compare_digest refuses str with non-ASCII characters, which a hostile cookie may hold).
            return any(hmac.compare_digest(given, s.encode()) and t > now for s, t in self._sessions.items())

    def lets_through(self, scope: Scope) -> bool:
        """Requests the bearer middleware passes without the token: the sign-in link, and the page and its
        log view for a signed-in browser. Nothing else of the API opens with the cookie."""
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            return False
        if scope["path"] == LOGIN:
            return True  # the handler itself answers 401 to a bad code
        return scope["path"] in (PAGE, LOGS) and self.signed_in(scope)

    def _prune(self, now: float) -> None:
        self._codes = {c: t for c, t in self._codes.items() if t > now}
        self._sessions = {s: t for s, t in self._sessions.items() if t > now}


def _cookie(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:  # a malformed Cookie header is no session
                return ""
            morsel = jar.get(COOKIE)
            return morsel.value if morsel is not None else ""
    return ""
