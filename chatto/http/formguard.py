"""Cross-site form posts: our HTML forms may only be posted from our pages.

A form post is a "simple" request: any site can make a victim's browser send
one, with the victim's cookies (or, for a login form, without needing any).
Two independent checks stop it:

- ``Origin``/``Referer``: browsers send ``Origin`` on every cross-site POST
  (``Referer`` as a fallback in older ones); it must name this server, the
  origin of ``webserver.url`` or the ``Host`` the request was sent to.
  ``Origin: null`` (sandboxed frames, some redirects) is refused.
- A form token where no session exists yet (the OAuth login form): the page
  sets a random nonce in an HttpOnly ``SameSite=Strict`` cookie and embeds
  HMAC(nonce) in the form, so a post is accepted only with both, and another
  site can neither read the cookie nor compute the field. This covers
  clients that send neither header.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from chatto.auth.cookies import read_cookie
from chatto.auth.keyring import Keyring, same
from chatto.http.asgi import Scope, header
from chatto.http.cors import origin_of

NONCE_COOKIE = "chatto_form_nonce"


def same_origin(scope: Scope, server_url: str) -> bool:
    """Did a browser send this from one of our own pages (or is it no browser)?"""
    origin = header(scope, b"origin")
    if origin is None:
        referer = header(scope, b"referer")
        if referer is None:
            return True  # not a browser form post: curl, scripts, tests
        origin = origin_of(referer)
    origin = origin.strip().lower()
    if origin == origin_of(server_url):
        return True
    host = (header(scope, b"host") or "").strip().lower()
    return bool(host) and urlsplit(origin).netloc == host


class FormTokens:
    """Double-submit tokens for forms shown before anyone is signed in."""

    def __init__(self, keyring: Keyring, secure: bool) -> None:
        self._keyring = keyring
        self._secure = secure

    def _field(self, nonce: str) -> str:
        return self._keyring.verifier("form-token", nonce)[:43]

    def issue(self, scope: Scope) -> tuple[str, tuple[bytes, bytes] | None]:
        """(form field, Set-Cookie or None): reuses the browser's nonce if it has one,
        so two open tabs keep working."""
        nonce = read_cookie(header(scope, b"cookie"), NONCE_COOKIE)
        if nonce and 20 <= len(nonce) <= 64:
            return self._field(nonce), None
        nonce = secrets.token_urlsafe(24)
        cookie = f"{NONCE_COOKIE}={nonce}; Path=/oauth; HttpOnly; SameSite=Strict"
        if self._secure:
            cookie += "; Secure"
        return self._field(nonce), (b"set-cookie", cookie.encode())

    def check(self, scope: Scope, field: str | None) -> bool:
        """Does the posted field match the nonce cookie this browser holds?"""
        nonce = read_cookie(header(scope, b"cookie"), NONCE_COOKIE)
        if not nonce or not field:
            return False
        return same(field, self._field(nonce))
