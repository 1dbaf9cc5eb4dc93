"""Server-level auth audit: login attempts for accounts that do not exist.

Attempts on real accounts are recorded in the user's own stream; attempts
on unknown names land here (keyed hashes only), which also makes both
login paths do the same storage work, so response time does not reveal
whether an account exists.
"""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.store import EventStore
from chatto.errors import InvalidInputError

AUDIT = EntityRef("audit", "auth")


@attrs.frozen
class UnknownLoginAttempted(Event):
    TYPE: ClassVar[str] = "audit.unknown_login"
    login_hash: str
    ip_hash: str


@attrs.frozen
class RecordUnknownLogin:
    login_hash: str
    ip_hash: str


class AuditActor(EntityActor):
    """Appends audit events; holds no state beyond the last sequence."""

    def __init__(self, store: EventStore, max_retries: int = 20) -> None:
        super().__init__(AUDIT, store, max_retries)
        self.attempts = 0

    async def start(self) -> None:
        # The audit stream only grows and nothing here depends on its
        # content: start from its last sequence instead of replaying it.
        self.last_seq = await self.store.last_seq(self.entity)

    def apply(self, recorded: Recorded) -> None:
        if isinstance(recorded.envelope.event, UnknownLoginAttempted):
            self.attempts += 1

    def decide(self, command: Any) -> Decision:
        if isinstance(command, RecordUnknownLogin):
            return Decision([UnknownLoginAttempted(command.login_hash, command.ip_hash)])
        raise InvalidInputError(f"audit actor cannot handle {type(command).__name__}")
