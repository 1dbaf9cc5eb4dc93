"""OAuth 2 authorization codes with PKCE (S256) for other Chatto frontends.

A code is minted only after the signed-in user approves the exact redirect
origin, which must be listed in ``webserver.oauth_redirect_origins`` (``*``
admits any https origin, never plain http). The code is stored as
``grant.<HMAC(code)>`` with a short TTL and is bound to the user's auth
generation, the redirect URI and the PKCE challenge; it is consumed exactly
once.
"""

from __future__ import annotations

import base64
import hashlib
import re
from urllib.parse import urlsplit

import attrs

from chatto.auth.keyring import Keyring, new_token, same
from chatto.auth.records import RecordStore
from chatto.errors import InvalidInputError

CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43,128}$")
VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


class OAuthError(InvalidInputError):
    """An invalid OAuth request; ``error`` is the RFC 6749 error code."""

    code = "OAUTH_ERROR"

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error


@attrs.frozen
class AuthorizeRequest:
    redirect_uri: str
    origin: str
    challenge: str
    state: str


def redirect_origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}".lower()


def check_authorize(params: dict[str, str], trusted: list[str]) -> AuthorizeRequest:
    """Validate an authorize request; never trust its redirect before this passes."""
    uri = params.get("redirect_uri", "")
    parts = urlsplit(uri)
    if parts.scheme != "https" or not parts.netloc or parts.fragment:
        raise OAuthError("invalid_request", "redirect_uri must be an https URL")
    origin = redirect_origin(uri)
    if "*" not in trusted and origin not in {o.lower().rstrip("/") for o in trusted}:
        raise OAuthError("unauthorized_client", "this redirect origin is not trusted here")
    if params.get("response_type") != "code":
        raise OAuthError("unsupported_response_type", "response_type must be code")
    if params.get("code_challenge_method") != "S256":
        raise OAuthError("invalid_request", "PKCE with code_challenge_method=S256 is required")
    challenge = params.get("code_challenge", "")
    if not CHALLENGE_RE.match(challenge):
        raise OAuthError("invalid_request", "code_challenge is missing or malformed")
    return AuthorizeRequest(uri, origin, challenge, params.get("state", "")[:512])


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Grants:
    """Authorization codes in RUNTIME_STATE."""

    def __init__(self, records: RecordStore, keyring: Keyring, ttl_seconds: int) -> None:
        self._records = records
        self._keys = keyring
        self.ttl = ttl_seconds

    def _key(self, code: str) -> str:
        return "grant." + self._keys.verifier("oauth_code", code)

    async def mint(self, user_id: str, generation: int, req: AuthorizeRequest) -> str:
        code = new_token()
        doc = {"u": user_id, "g": generation, "c": req.challenge, "r": req.redirect_uri}
        await self._records.put(self._key(code), doc, self.ttl)
        return code

    async def redeem(self, code: str, redirect_uri: str, verifier: str) -> tuple[str, int]:
        """(user id, generation) for a valid code; every failure is ``invalid_grant``."""
        if not VERIFIER_RE.match(verifier):
            raise OAuthError("invalid_request", "code_verifier is missing or malformed")
        doc = await self._records.consume(self._key(code))
        if doc is None:
            raise OAuthError("invalid_grant", "the code is invalid, used or expired")
        if doc.get("r") != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization")
        if not same(s256(verifier), str(doc.get("c", ""))):
            raise OAuthError("invalid_grant", "code_verifier does not match the challenge")
        return str(doc["u"]), int(doc["g"])
