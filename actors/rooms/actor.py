"""The room entity: ``RoomActor`` validates membership, messages, reactions.

Domain rules live here (members only, bans with expiry, the author edits
within 3 hours, DMs have fixed participants, archived rooms are read-only).
Who may moderate is decided by the caller (``as_moderator``): permission
checks belong to the API layer. Bodies arrive in plaintext with the
author's message-body key and are sealed in ``decide`` with an AAD that
names the event, the body's event, the room, the author and the epoch.
Messages are held in a bounded ``MessageWindow`` (``actors.rooms.window``):
``prepare`` reads back the old ones a command targets before ``decide``.
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.ids import new_id
from actors.rooms.commands import (
    ArchiveRoom,
    Ban,
    CreateRoom,
    EditMessage,
    Join,
    Leave,
    PinMessage,
    PostMessage,
    PurgeMember,
    React,
    RegisterAttachment,
    Removal,
    RetractMessage,
    TakeUnerased,
    Unban,
    UpdateRoom,
)
from actors.rooms.events import (
    AttachmentUploaded,
    MemberBanned,
    MemberDeleted,
    MemberJoined,
    MemberLeft,
    MemberUnbanned,
    MessageEdited,
    MessagePosted,
    MessageRetracted,
    ReactionChanged,
    RoomArchived,
    RoomCreated,
    RoomUpdated,
)
from actors.rooms.pins import apply_pin, decide_pin
from actors.rooms.prepare import PurgePlan, command_targets, purge_targets
from actors.rooms.reactions import canonical_reaction
from actors.rooms.rules import (
    EDIT_WINDOW_MS,
    MAX_DM_PARTICIPANTS,
    Msg,
    check_body,
    client_key_digest,
    posted_before,
    remember_client_key,
    seal_body,
)
from actors.rooms.window import HOT_MESSAGES, MessageWindow
from actors.snapshot import SnapshotStore
from actors.store import EventStore
from chatto.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError


class RoomActor(EntityActor):
    """One room's write side (checkpointed: a long room loads from its checkpoint)."""

    snapshot_name = "room"
    # 2: reaction keys in canonical form (actors/rooms/reactions.py). 3: pins.
    # 4: messages as a hot window plus compact indexes (actors/rooms/window.py).
    snapshot_schema = 4

    def __init__(
        self,
        room_id: str,
        store: EventStore,
        max_retries: int = 5,
        checkpoints: SnapshotStore | None = None,
        hot_messages: int = HOT_MESSAGES,
    ) -> None:
        super().__init__(EntityRef("room", room_id), store, max_retries, checkpoints)
        self.room_id = room_id
        self.created: RoomCreated | None = None
        self.archived = False
        self.members: set[str] = set()
        self.bans: dict[str, int] = {}
        self.window = MessageWindow(hot_messages)
        self._purge: PurgePlan | None = None  # read by ``prepare`` for PurgeMember
        self.deleted_members: set[str] = set()
        self.attachments: dict[str, str] = {}  # attachment id -> author
        self.used_attachments: set[str] = set()
        # Client key digest -> (message id, posted at), oldest first; entries
        # older than CLIENT_KEY_WINDOW_MS before the newest are dropped.
        self.client_keys: dict[str, tuple[str, int]] = {}
        # Retracted messages whose stored events were seen on replay: a crash
        # came between the retraction and the erase. Erased via TakeUnerased.
        self.unerased: list[int] = []
        self.pins: list[str] = []  # actors/rooms/pins.py
        self._replaying = True

    async def start(self) -> None:
        await super().start()
        self._replaying = False

    @property
    def messages(self) -> dict[str, Msg]:
        """The hot window's messages (the others are in ``window``'s indexes)."""
        return self.window.hot

    # --- checkpoint -------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Everything ``apply`` built, as JSON values (``actors.checkpoint``)."""
        return {
            "room_id": self.room_id,
            "created": None if self.created is None else attrs.asdict(self.created),
            "archived": self.archived,
            "members": sorted(self.members),
            "bans": dict(self.bans),
            "messages": self.window.export(),
            "deleted_members": sorted(self.deleted_members),
            "attachments": dict(self.attachments),
            "used_attachments": sorted(self.used_attachments),
            "client_keys": [[d, mid, at] for d, (mid, at) in self.client_keys.items()],
            "unerased": list(self.unerased),
            "pins": list(self.pins),
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        if state["room_id"] != self.room_id:
            raise ValueError(f"checkpoint of room {state['room_id']!r}, not {self.room_id!r}")
        created = state["created"]
        if created is not None:
            created = RoomCreated(**{**created, "participants": tuple(created["participants"])})
        self.created = created
        self.archived = bool(state["archived"])
        self.members = set(state["members"])
        self.bans = {str(u): int(t) for u, t in state["bans"].items()}
        self.window.restore(state["messages"])
        self.deleted_members = set(state["deleted_members"])
        self.attachments = dict(state["attachments"])
        self.used_attachments = set(state["used_attachments"])
        self.client_keys = {d: (mid, int(at)) for d, mid, at in state["client_keys"]}
        self.unerased = [int(s) for s in state["unerased"]]
        self.pins = [str(p) for p in state["pins"]]

    # --- state ------------------------------------------------------------------
    def apply(self, recorded: Recorded) -> None:
        ev, env = recorded.envelope.event, recorded.envelope
        apply_pin(self.pins, ev)
        if isinstance(ev, RoomCreated):
            self.created = ev
        elif isinstance(ev, RoomArchived):
            self.archived = ev.archived
        elif isinstance(ev, MemberJoined):
            self.members.add(ev.user_id)
        elif isinstance(ev, MemberLeft):
            self.members.discard(ev.user_id)
        elif isinstance(ev, MemberBanned):
            self.members.discard(ev.user_id)
            self.bans[ev.user_id] = ev.until_ms
        elif isinstance(ev, MemberUnbanned):
            self.bans.pop(ev.user_id, None)
        elif isinstance(ev, AttachmentUploaded):
            self.attachments[ev.attachment_id] = ev.author_id
        elif isinstance(ev, MessagePosted):
            self.used_attachments.update(ev.attachments)
            self.window.posted(recorded)
            if ev.client_key:
                remember_client_key(self.client_keys, ev.client_key, env.id, env.at_ms)
        elif isinstance(ev, MessageEdited):
            self.window.edited(ev.target_id, recorded.seq)
        elif isinstance(ev, MessageRetracted):
            seqs = self.window.retract(ev.target_id, ev.author_id, env.at_ms)
            if self._replaying:
                self.unerased.extend(seqs)
        elif isinstance(ev, MemberDeleted):
            self.members.discard(ev.user_id)
            self.deleted_members.add(ev.user_id)
        elif isinstance(ev, ReactionChanged):
            self.window.reacted(ev, recorded.seq)

    def _banned(self, user_id: str) -> bool:
        until = self.bans.get(user_id)
        return until is not None and (until == 0 or until > time.time() * 1000)

    def _require_room(self) -> RoomCreated:
        if self.created is None:
            raise NotFoundError("no such room")
        return self.created

    def _require_member(self, user_id: str) -> RoomCreated:
        room = self._require_room()
        if user_id not in self.members:
            raise ForbiddenError("you are not a member of this room")
        return room

    def _require_writable(self) -> None:
        if self.archived:
            raise ForbiddenError("this room is archived")

    def _message(self, target_id: str) -> Msg:
        msg = self.messages.get(target_id)
        if msg is None or msg.retracted:
            raise NotFoundError("no such message in this room")
        return msg

    # --- commands ---------------------------------------------------------------
    async def prepare(self, command: Any) -> None:
        """Read back the cold messages ``command`` targets (``MessageWindow.load``)."""
        if isinstance(command, PurgeMember):
            self._purge = await PurgePlan.extended(
                self._purge, self.window, self.store, self.entity, command.user_id
            )
            return
        self._purge = None
        for message_id in command_targets(command, self.client_keys):
            await self.window.load(self.store, self.entity, message_id)

    def decide(self, command: Any) -> Decision:
        handler = getattr(self, "_on_" + type(command).__name__, None)
        if handler is None:
            raise InvalidInputError(f"room actor cannot handle {type(command).__name__}")
        result: Decision = handler(command)
        return result

    def _on_CreateRoom(self, c: CreateRoom) -> Decision:
        if self.created is not None:
            if c.kind == "dm" and self.created.kind == "dm":
                # Same participants: same room (a DM never changes them).
                return Decision(reply=self.room_id, stale_ok=True)
            raise ConflictError("room already exists")
        if c.kind == "dm" and not 2 <= len(c.participants) <= MAX_DM_PARTICIPANTS:
            raise InvalidInputError(f"a DM has 2 to {MAX_DM_PARTICIPANTS} participants")
        events: list[Event] = [
            RoomCreated(
                c.name, c.topic, c.kind, c.created_by, c.group_id, c.participants, c.read_only
            )
        ]
        joiners = c.participants if c.kind == "dm" else ((c.created_by,) if c.created_by else ())
        events += [MemberJoined(u) for u in joiners]
        return Decision(events, reply=self.room_id)

    def _on_UpdateRoom(self, c: UpdateRoom) -> Decision:
        room = self._require_room()
        if room.kind == "dm":
            raise ForbiddenError("DMs cannot be renamed")
        return Decision([RoomUpdated(c.name, c.topic, c.group_id)])

    def _on_ArchiveRoom(self, c: ArchiveRoom) -> Decision:
        self._require_room()
        if c.archived == self.archived:
            return Decision()
        return Decision([RoomArchived(c.archived, c.by)])

    def _on_Join(self, c: Join) -> Decision:
        room = self._require_room()
        if room.kind == "dm":
            raise ForbiddenError("DMs cannot be joined")
        self._require_writable()
        if self._banned(c.user_id):
            raise ForbiddenError("you are banned from this room")
        if c.user_id in self.members:
            return Decision()
        return Decision([MemberJoined(c.user_id)])

    def _on_Leave(self, c: Leave) -> Decision:
        self._require_member(c.user_id)
        return Decision([MemberLeft(c.user_id)])

    def _on_Ban(self, c: Ban) -> Decision:
        room = self._require_room()
        if room.kind == "dm":
            raise ForbiddenError("nobody can be banned from a DM")
        if not c.reason.strip():
            raise InvalidInputError("a ban needs a reason")
        return Decision([MemberBanned(c.user_id, c.by, c.reason.strip()[:500], c.until_ms)])

    def _on_Unban(self, c: Unban) -> Decision:
        self._require_room()
        if c.user_id not in self.bans:
            return Decision()
        return Decision([MemberUnbanned(c.user_id, c.by)])

    def _on_PostMessage(self, c: PostMessage) -> Decision:
        self._require_member(c.author_id)
        self._require_writable()
        digest = client_key_digest(c.author_id, c.client_key) if c.client_key else ""
        if (
            digest
            and (before := posted_before(self.client_keys, self.messages, digest)) is not None
        ):
            # A retry of a post that was stored: answer with that message.
            # The key cannot be forgotten by catching up, so no refresh.
            return Decision(reply=before, stale_ok=True)
        check_body(c.body)
        for ref in (c.in_reply_to, c.thread_root):
            if ref:
                self._message(ref)
        if c.thread_root and self.messages[c.thread_root].thread_root:
            raise InvalidInputError("threads cannot be nested")
        for att in c.attachments:
            if self.attachments.get(att) != c.author_id or att in self.used_attachments:
                raise InvalidInputError("attachments must be your own unused uploads here")
        eid = new_id()
        body = seal_body(c.key, eid, eid, self.room_id, c.author_id, c.body)
        ev = MessagePosted(
            c.author_id,
            body,
            c.key.epoch,
            c.in_reply_to,
            c.thread_root,
            c.echo,
            c.attachments,
            digest,
            self._mentionable(c.mentions, c.author_id),
            c.mention_room,
        )
        return Decision([ev], reply=eid, event_ids=[eid])

    def _mentionable(self, mentions: tuple[str, ...], author_id: str) -> tuple[str, ...]:
        """Only current members other than the author: a mention of anyone
        else is dropped without a trace, whoever they are (no oracle)."""
        return tuple(u for u in dict.fromkeys(mentions) if u in self.members and u != author_id)

    def _on_RegisterAttachment(self, c: RegisterAttachment) -> Decision:
        self._require_member(c.author_id)
        self._require_writable()
        ev = AttachmentUploaded(
            c.attachment_id, c.author_id, c.name_enc, c.content_type, c.size, c.epoch
        )
        return Decision([ev], reply=c.attachment_id)

    def _on_EditMessage(self, c: EditMessage) -> Decision:
        self._require_member(c.author_id)
        self._require_writable()
        msg = self._message(c.target_id)
        if msg.author_id != c.author_id:
            raise ForbiddenError("only the author can edit a message")
        if time.time() * 1000 - msg.at_ms > EDIT_WINDOW_MS:
            raise ForbiddenError("messages can only be edited within 3 hours")
        check_body(c.body)
        eid = new_id()
        body = seal_body(c.key, eid, c.target_id, self.room_id, c.author_id, c.body)
        mentions = self._mentionable(c.mentions, c.author_id)
        edited = MessageEdited(
            c.target_id, c.author_id, body, c.key.epoch, mentions, c.mention_room
        )
        return Decision([edited], event_ids=[eid])

    def _on_RetractMessage(self, c: RetractMessage) -> Decision:
        msg = self._message(c.target_id)
        if msg.author_id != c.by and not c.as_moderator:
            raise ForbiddenError("only the author or a moderator can retract a message")
        # The reply names the stored events that held the body, so the caller
        # can erase them from the stream once the retraction is recorded.
        removal = Removal(tuple(msg.seqs), msg.attachments)
        return Decision([MessageRetracted(c.target_id, c.by, msg.author_id)], reply=removal)

    def _on_PinMessage(self, c: PinMessage) -> Decision:
        self._require_member(c.by)
        self._require_writable()
        return decide_pin(self.pins, self.messages.get(c.target_id), c)

    def _on_PurgeMember(self, c: PurgeMember) -> Decision:
        self._require_room()
        events: list[Event] = []
        seqs: list[int] = []
        for mid, body_seqs in purge_targets(self._purge, self.window, c.user_id):
            events.append(MessageRetracted(mid, "system", c.user_id))
            seqs.extend(body_seqs)
        uploads = tuple(a for a, author in self.attachments.items() if author == c.user_id)
        if c.user_id not in self.deleted_members and (
            c.user_id in self.members or events or self._was_member(c.user_id)
        ):
            events.append(MemberDeleted(c.user_id))
        return Decision(events, reply=Removal(tuple(seqs), uploads))

    def _was_member(self, user_id: str) -> bool:
        return self.created is not None and user_id in self.created.participants

    def _on_TakeUnerased(self, _c: TakeUnerased) -> Decision:
        seqs, self.unerased = tuple(self.unerased), []
        return Decision(reply=seqs)

    def _on_React(self, c: React) -> Decision:
        self._require_member(c.user_id)
        msg = self._message(c.target_id)
        code = canonical_reaction(c.shortcode)
        has = c.user_id in msg.reactions.get(code, set())
        if has == c.add:
            return Decision()
        return Decision([ReactionChanged(c.target_id, c.user_id, code, c.add)])
