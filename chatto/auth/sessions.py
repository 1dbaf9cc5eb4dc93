"""Bearer tokens and cookie sessions: verifiers in RUNTIME_STATE, sliding TTL.

A bearer token is ``ct_<user id>.<256 random bits>``; it is stored only as
``session.<user>.<HMAC(secret, "bearer" || token)>`` (the user id in the key
lets account deletion find and revoke every token of a user). A cookie session is a random
id stored as ``cookie_session.<user>.<HMAC(secret, "cookie" || id)>``; the
signed cookie carries the id. Every successful validation extends the TTL
(re-put at most once a minute, so hot paths do not write on every request).
Revocation deletes the key and announces it (``EndAnnouncer``: open
WebSockets authenticated by it end, in every process). Validations go
through a short-lived per-process cache (``session_cache``) that every
announced end clears. The auth generation
stored with the session is compared by the caller with the user's current
one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Protocol

import attrs

from chatto.auth.keyring import Keyring, new_token
from chatto.auth.records import RecordStore
from chatto.auth.session_cache import SessionCache

REFRESH_AFTER_MS = 60_000
TOKEN_PREFIX = "ct_"


@attrs.frozen
class Session:
    user_id: str
    generation: int
    kind: str  # "bearer" | "cookie"
    created_ms: int
    # The record's key names the credential without being it (an HMAC);
    # open sockets use it to learn that the credential ended.
    key: str = ""
    # When the record expires unless something validates it again.
    expires_ms: int = 0


class EndAnnouncer(Protocol):
    """Told after a session key is deleted, so open sockets end (``chatto.auth.ends``)."""

    async def announce(self, keys: Sequence[str], successor: str = "") -> None: ...


def _now_ms() -> int:
    return int(time.time() * 1000)


class SessionStore:
    """Issues, validates (sliding) and revokes sessions."""

    def __init__(
        self,
        records: RecordStore,
        keyring: Keyring,
        ttl_seconds: int,
        ends: EndAnnouncer | None = None,
        cache: SessionCache | None = None,
    ) -> None:
        self._records = records
        self._keys = keyring
        self.ttl_seconds = ttl_seconds
        self._ends = ends
        self.cache = SessionCache() if cache is None else cache

    def _expires_ms(self, doc: dict[str, Any]) -> int:
        # The record is re-put (with a full TTL) exactly when "r" is set.
        return int(doc.get("r", 0)) + self.ttl_seconds * 1000

    async def _ended(self, keys: Sequence[str], successor: str = "") -> None:
        self.cache.forget(keys)
        if self._ends is not None and keys:
            await self._ends.announce(keys, successor)

    def _bearer_key(self, token: str) -> str | None:
        uid, dot, rest = token[len(TOKEN_PREFIX) :].partition(".")
        if not token.startswith(TOKEN_PREFIX) or not dot or not rest or not uid.isalnum():
            return None
        return f"session.{uid}." + self._keys.verifier("bearer", token)

    def _cookie_key(self, user_id: str, sid: str) -> str:
        return f"cookie_session.{user_id}." + self._keys.verifier("cookie", sid)

    async def _issue(self, key: str, user_id: str, generation: int, kind: str) -> None:
        now = _now_ms()
        doc = {"u": user_id, "g": generation, "k": kind, "c": now, "r": now}
        await self._records.put(key, doc, self.ttl_seconds)

    async def _validate(self, key: str) -> Session | None:
        doc = self.cache.get(key)
        if doc is None:
            epoch = self.cache.epoch
            found = await self._records.get(key)
            if found is None:
                return None
            doc = found[0]
            self.cache.put(key, doc, epoch)
        try:
            user_id, generation, kind = str(doc["u"]), int(doc["g"]), str(doc["k"])
            created, refreshed = int(doc["c"]), int(doc.get("r", 0))
        except (KeyError, TypeError, ValueError):
            return None
        now = _now_ms()
        if now - refreshed > REFRESH_AFTER_MS:
            doc["r"] = now
            epoch = self.cache.epoch
            await self._records.put(key, doc, self.ttl_seconds)
            self.cache.put(key, doc, epoch)
        return Session(user_id, generation, kind, created, key, self._expires_ms(doc))

    async def expires_at(self, key: str) -> int | None:
        """When the session under ``key`` expires (epoch ms), without extending it; None if gone."""
        found = await self._records.get(key)
        if found is None:
            return None
        try:
            return self._expires_ms(found[0])
        except (TypeError, ValueError):
            return None

    async def issue_bearer(self, user_id: str, generation: int) -> str:
        token = new_token(f"{TOKEN_PREFIX}{user_id}.")
        key = self._bearer_key(token)
        assert key is not None
        await self._issue(key, user_id, generation, "bearer")
        return token

    async def validate_bearer(self, token: str) -> Session | None:
        key = self._bearer_key(token) if len(token) <= 160 else None
        if key is None:
            return None
        session = await self._validate(key)
        # The record must belong to the user the token names.
        return session if session is not None and key.split(".")[1] == session.user_id else None

    async def revoke_bearer(self, token: str) -> None:
        key = self._bearer_key(token)
        if key is not None:
            await self._records.delete(key)
            await self._ended([key])

    async def revoke_all(self, user_id: str) -> int:
        """Delete every bearer and cookie session of a user; returns how many."""
        keys = [
            key
            for prefix in (f"session.{user_id}.", f"cookie_session.{user_id}.")
            for key in await self._records.keys(prefix)
        ]
        for key in keys:
            await self._records.delete(key)
        await self._ended(keys)
        return len(keys)

    async def issue_cookie_session(self, user_id: str, generation: int) -> str:
        sid = new_token()
        await self._issue(self._cookie_key(user_id, sid), user_id, generation, "cookie")
        return sid

    async def validate_cookie_session(self, user_id: str, sid: str) -> Session | None:
        return await self._validate(self._cookie_key(user_id, sid))

    async def revoke_cookie_session(self, user_id: str, sid: str, successor: str = "") -> None:
        """End a cookie session; ``successor`` (a rotation's new session id) takes over
        its open sockets instead of ending them."""
        key = self._cookie_key(user_id, sid)
        await self._records.delete(key)
        await self._ended([key], self._cookie_key(user_id, successor) if successor else "")
