"""Invite links: created by admins, checked before sign-up, used up atomically.

An invite code is ``<id>.<secret>``: the id names the record
``invite.<id>`` in RUNTIME_STATE (listed and revoked by id), the secret is
shown once and stored only as ``HMAC(core.secret_key, "invite" || secret)``.
A record holds the room to join, the limits and the uses so far; a use is
taken with a conditional update on the record's revision, so of concurrent
sign-ups on the last use exactly one wins, in any process.

Every way an invite can fail (malformed, unknown, wrong secret, expired,
used up, revoked, registration closed) raises the same ``InviteInvalid``
after the same storage work (one read), so the answer is no oracle.
"""

from __future__ import annotations

import re
import time
from typing import Any

import attrs

from actors.ids import new_id
from chatto.auth.keyring import Keyring, new_token, same
from chatto.auth.records import RecordStore
from chatto.errors import ChattoError, InvalidInputError, StaleWriteError, UnavailableError

PREFIX = "invite."
MAX_ACTIVE = 500
MAX_USES = 10_000
MAX_EXPIRY = 365 * 86400
DEFAULT_EXPIRY = 7 * 86400
# Records outlive their expiry a little so admins see what expired.
KEEP_AFTER_EXPIRY = 3600
ID_RE = re.compile(r"^[0-9A-Za-z]{10,40}$")
# Looked up when a code cannot name a record: the same one read either way.
NO_ID = "0000000000"
UPDATE_TRIES = 5


class InviteInvalid(ChattoError):
    """The invite cannot be used (never says why: unknown, used, expired or revoked)."""

    code = "INVALID_INVITE"
    http_status = 400

    def __init__(self) -> None:
        super().__init__("this invite link is not valid")


@attrs.frozen
class Invite:
    """An invite's metadata (never its secret)."""

    id: str
    room_id: str
    created_by: str
    created_at: float
    expires_at: float
    max_uses: int
    uses: int

    @classmethod
    def from_doc(cls, invite_id: str, doc: dict[str, Any]) -> Invite:
        return cls(
            invite_id,
            str(doc.get("r", "")),
            str(doc.get("b", "")),
            float(doc.get("c", 0)),
            float(doc.get("x", 0)),
            int(doc.get("m", 1)),
            int(doc.get("n", 0)),
        )

    def usable(self, now: float) -> bool:
        return self.uses < self.max_uses and now < self.expires_at


@attrs.frozen
class CreatedInvite:
    invite: Invite
    code: str


class Invites:
    """Create, list, revoke, check and use invites."""

    def __init__(self, records: RecordStore, keyring: Keyring) -> None:
        self._records = records
        self._keys = keyring

    def _hash(self, secret: str) -> str:
        return self._keys.verifier("invite", secret)

    async def create(
        self, created_by: str, expires_in: int | None, max_uses: int | None, room_id: str
    ) -> CreatedInvite:
        """A new invite; the returned code is the only copy of its secret."""
        expires_in = DEFAULT_EXPIRY if expires_in is None else expires_in
        max_uses = 1 if max_uses is None else max_uses
        if not 1 <= expires_in <= MAX_EXPIRY:
            raise InvalidInputError(f"expiresInSeconds must be 1..{MAX_EXPIRY}")
        if not 1 <= max_uses <= MAX_USES:
            raise InvalidInputError(f"maxUses must be 1..{MAX_USES}")
        if len(await self._records.keys(PREFIX)) >= MAX_ACTIVE:
            raise InvalidInputError(f"at most {MAX_ACTIVE} invites at once; revoke some first")
        invite_id, secret, now = new_id(), new_token(), time.time()
        doc = {
            "h": self._hash(secret),
            "r": room_id,
            "b": created_by,
            "c": now,
            "x": now + expires_in,
            "m": max_uses,
            "n": 0,
        }
        await self._records.create(PREFIX + invite_id, doc, expires_in + KEEP_AFTER_EXPIRY)
        return CreatedInvite(Invite.from_doc(invite_id, doc), f"{invite_id}.{secret}")

    async def list(self) -> list[Invite]:
        """Every invite still on record (expired ones for a while), newest first."""
        found: list[Invite] = []
        for key in (await self._records.keys(PREFIX))[:MAX_ACTIVE]:
            entry = await self._records.get(key)
            if entry is not None:
                found.append(Invite.from_doc(key.removeprefix(PREFIX), entry[0]))
        return sorted(found, key=lambda i: i.created_at, reverse=True)

    async def revoke(self, invite_id: str) -> bool:
        """Delete the invite; False if there was none by that id."""
        if not ID_RE.match(invite_id) or await self._records.get(PREFIX + invite_id) is None:
            return False
        await self._records.delete(PREFIX + invite_id)
        return True

    def _split(self, code: str) -> tuple[str, str]:
        invite_id, _, secret = code.strip().partition(".")
        if not ID_RE.match(invite_id) or not secret or len(secret) > 128:
            return NO_ID, ""
        return invite_id, secret

    async def check(self, code: str) -> Invite:
        """The usable invite ``code`` names, or ``InviteInvalid`` (one read either way)."""
        invite_id, secret = self._split(code)
        entry = await self._records.get(PREFIX + invite_id)
        # The secret's HMAC is computed whatever was found: same work.
        presented = self._hash(secret)
        if entry is None or not secret:
            raise InviteInvalid()
        invite = Invite.from_doc(invite_id, entry[0])
        if not same(presented, str(entry[0].get("h", ""))) or not invite.usable(time.time()):
            raise InviteInvalid()
        return invite

    async def refuse(self, code: str) -> None:
        """Registration is closed: the same read and the same answer as a bad invite."""
        await self._records.get(PREFIX + self._split(code)[0])
        raise InviteInvalid()

    async def use(self, invite_id: str) -> Invite:
        """Take one use of a checked invite (by id); ``InviteInvalid`` if none is left.

        A conditional update on the record's revision: of concurrent callers
        on the last use exactly one succeeds, whatever process they run in.
        """
        for _ in range(UPDATE_TRIES):
            entry = await self._records.get(PREFIX + invite_id)
            if entry is None:
                raise InviteInvalid()
            doc, revision = entry
            invite = Invite.from_doc(invite_id, doc)
            now = time.time()
            if not invite.usable(now):
                raise InviteInvalid()
            doc["n"] = invite.uses + 1
            ttl = max(1, int(invite.expires_at - now)) + KEEP_AFTER_EXPIRY
            try:
                await self._records.update(PREFIX + invite_id, doc, revision, ttl)
            except StaleWriteError:
                continue  # another sign-up took a use first: look again
            return attrs.evolve(invite, uses=invite.uses + 1)
        raise UnavailableError("the invite is busy; try again")
