"""Account deletion with crypto-shredding, as a resumable background job.

``request`` records ``UserDeletionStarted`` (the account is locked at once:
the directory stops returning it, so every token and cookie fails) and
queues the job. The job then, idempotently: revokes every session; in every
room the user touched retracts their live messages, erases the stored
events that held those bodies and publishes ``MemberDeleted``; deletes the
login/email claims, read markers and presence; erases (secure delete) the
stored events that held the user's bcrypt hashes and their notification
settings, follows and dismissals (``evt.notify.<user>.*``); shreds the user's DEK
records and KEK through the KMS actor; and records ``UserDeleted``. If the
process dies part-way, the next start finds the user still marked as
deleting and runs the job again from the top.
"""

from __future__ import annotations

import logging

import trio

from actors.kms.actor import Kms
from actors.notifications.actor import StoredSeqs
from actors.projector import Projector
from actors.rooms.commands import PurgeMember, TakeUnerased
from actors.rooms.directory import RoomDirectory
from actors.runtime import ActorSystem
from actors.users.actor import FinishDeletion, GetKeyRefs, GetPasswordSeqs, StartDeletion
from actors.users.directory import UserDirectory
from chatto.auth.keyring import Keyring
from chatto.auth.records import RecordStore
from chatto.auth.sessions import SessionStore
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM, MEMORY_CACHE, OBJECTS
from chatto.errors import BusyError, ChattoError, ForbiddenError
from chatto.messaging.attachments import attachment_object, avatar_object
from chatto.messaging.keys import BodyKeys

log = logging.getLogger(__name__)

PURGE_SECONDS = 600.0


class AccountDeleter:
    """Runs deletions one at a time from a bounded queue."""

    def __init__(
        self,
        actors: ActorSystem,
        projector: Projector,
        users: UserDirectory,
        rooms: RoomDirectory,
        sessions: SessionStore,
        records: RecordStore,
        keyring: Keyring,
        kms: Kms,
        keys: BodyKeys,
        bridge: NatsBridge,
    ) -> None:
        self._actors = actors
        self._projector = projector
        self._users = users
        self._rooms = rooms
        self._sessions = sessions
        self._records = records
        self._keyring = keyring
        self._kms = kms
        self._keys = keys
        self._bridge = bridge
        self._send, self._receive = trio.open_memory_channel[str](1000)
        self.completed = 0

    async def request(self, user_id: str, by: str) -> None:
        """Lock the account now and queue the rest of the deletion.

        The last owner is never deleted (by anyone, themselves included): a
        server without an owner could only get one back through the config.
        """
        user = self._users.get(user_id)
        if user is not None and user.is_owner:
            owners = [u for u in self._users.users.values() if u.is_owner and self._users.get(u.id)]
            if all(u.id == user_id for u in owners):
                raise ForbiddenError("the last owner cannot be deleted")
        done = await self._actors.ask("user", user_id, StartDeletion(by))
        if done.recorded:
            await self._projector.wait_for(done.last_seq)
        try:
            self._send.send_nowait(user_id)
        except trio.WouldBlock:
            # Still safe: the account is locked and the next start resumes it.
            raise BusyError("too many deletions in progress; it will finish later") from None

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for user_id in self._users.pending_deletions():
            self._send.send_nowait(user_id)
        task_status.started()
        async for user_id in self._receive:
            try:
                await self.run(user_id)
            except ChattoError as exc:
                log.error("deleting an account failed (%s); it resumes at next start", exc.code)

    async def run(self, user_id: str) -> None:
        """Every step of a deletion; safe to repeat."""
        user = self._users.users.get(user_id)
        if user is None or user.deleted:
            return
        await self._sessions.revoke_all(user_id)
        claims = await self._claims(user_id, user.login, list(user.emails))
        for room_id in sorted(self._rooms.rooms_touched_by(user_id)):
            await self._purge_room(room_id, user_id)
        await self._drop_records(user_id, claims)
        await self._bridge.obj_erase(OBJECTS, avatar_object(user_id))
        # Erasing leaves the entity's last event (the deletion start, appended
        # after every hash) in place, so the user actor's next append still matches.
        for seq in (await self._actors.ask("user", user_id, GetPasswordSeqs())).value:
            await self._bridge.erase_msg(EVENT_STREAM, int(seq))
        # Their notification settings, follows and dismissals: what they read.
        for seq in (await self._actors.ask("notify", user_id, StoredSeqs())).value:
            await self._bridge.erase_msg(EVENT_STREAM, int(seq))
        keks, deks = (await self._actors.ask("user", user_id, GetKeyRefs())).value
        await self._kms.shred(keks, deks, legacy_user_ids=(user_id,))
        self._keys.forget_user(user_id)
        done = await self._actors.ask("user", user_id, FinishDeletion())
        await self._projector.wait_for(done.last_seq)
        await self._records.delete(f"deletion.{user_id}")
        self.completed += 1
        log.info("account deleted and its keys shredded")

    async def _purge_room(self, room_id: str, user_id: str) -> None:
        # A member with a long history in the room: the actor reads their old
        # posts back from the stream (actors/rooms/prepare.py) before it
        # decides; a reply lost to a short deadline would lose the list of
        # stored events to erase.
        done = await self._actors.ask("room", room_id, PurgeMember(user_id), within=PURGE_SECONDS)
        seqs = list(done.value.seqs)
        seqs += (await self._actors.ask("room", room_id, TakeUnerased())).value
        for seq in seqs:
            await self._bridge.erase_msg(EVENT_STREAM, int(seq))
        for attachment in done.value.attachments:
            await self._bridge.obj_erase(OBJECTS, attachment_object(room_id, attachment))
        if done.recorded:
            await self._projector.wait_for(done.last_seq)

    async def _claims(self, user_id: str, login: str, emails: list[str]) -> list[str]:
        """The uniqueness claims to release, saved first: after the keys are
        shredded a resumed job could no longer derive them from the login."""
        found = await self._records.get(f"deletion.{user_id}")
        if found is not None:
            return [str(k) for k in found[0].get("claims", [])]
        claims = [f"email.{self._keyring.index_key('email', e)}" for e in emails]
        if login:
            claims.append(f"login.{self._keyring.index_key('login', login.lower())}")
        await self._records.put(f"deletion.{user_id}", {"claims": claims}, None)
        return claims

    async def _drop_records(self, user_id: str, claims: list[str]) -> None:
        for claim in claims:
            await self._records.delete(claim)
        for key in await self._records.keys(f"read.{user_id}."):
            await self._records.delete(key)
        await self._bridge.kv_delete(MEMORY_CACHE, f"presence.{user_id}")
