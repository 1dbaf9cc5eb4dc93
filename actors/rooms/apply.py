"""Rooms read model: applying a message event (post, edit, reaction,
retraction, attachment) to a room, kept apart from ``directory.py``. The
cold path folds stored events with the same function (``fold.py``), so hot
and cold views cannot drift."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from actors.events import Recorded
from actors.rooms.cold_apply import apply_cold
from actors.rooms.events import (
    AttachmentUploaded,
    MessageEdited,
    MessagePosted,
    MessageRetracted,
    ReactionChanged,
)
from actors.rooms.pins import apply_pin
from actors.rooms.reactions import stored_reaction
from actors.rooms.views import AttachmentView, MessageView, RoomView, Timeline

if TYPE_CHECKING:
    from actors.rooms.directory import RoomDirectory


def apply_message(rooms: RoomDirectory, room: RoomView, rec: Recorded) -> None:
    ev, env = rec.envelope.event, rec.envelope
    rooms.indexes.changed(room)  # posts, touches, retractions (resident: prepared)
    if isinstance(ev, AttachmentUploaded):
        rooms.authors.index(ev.author_id)  # stored by number in the room's index
        room.attachments[ev.attachment_id] = AttachmentView(
            ev.attachment_id,
            room.id,
            ev.author_id,
            ev.name_enc,
            ev.content_type,
            ev.size,
            ev.epoch,
        )
        return
    if isinstance(ev, MessagePosted):
        # Shared strings (room, author, the ids a reply names): one
        # object each instead of one per message.
        posted = MessageView(
            env.id,
            room.id,
            sys.intern(ev.author_id),
            rec.seq,
            env.at_ms,
            ev.body,
            env.id,
            ev.epoch,
            rooms.same_id(ev.in_reply_to),
            rooms.same_id(ev.thread_root),
            ev.echo,
            attachments=ev.attachments,
        )
        rooms.messages[env.id] = posted
        room.hot[rec.seq] = posted
        if ev.attachments:
            room.attached[rec.seq] = ev.attachments
        replied = room.posts.find(ev.in_reply_to) if ev.in_reply_to else -1
        author = rooms.authors.index(ev.author_id)
        room.authors.add(author)
        room.last_post_seq = rec.seq
        room.posts.add(
            env.id,
            rec.seq,
            author,
            ev.thread_root,
            room.posts.authors[replied] if replied >= 0 else -1,
            ev.echo,
        )
        if ev.thread_root:
            room.threads.setdefault(ev.thread_root, Timeline()).add(rec.seq)
            root = rooms.messages.get(ev.thread_root)
            if root is not None:
                root.reply_count += 1
            if (at := room.posts.find(ev.thread_root)) >= 0:  # its reply count moved
                rooms.cold_pages.forget(room.id, room.posts.seqs[at])
        if not ev.thread_root or ev.echo:
            room.timeline.add(rec.seq)
            room.unread.posted(ev.author_id, rec.seq)
        rooms.settle(room)
        return
    # Before the lookup: on replay a retracted message's post is erased
    # from the stream, but its pin (and the retraction) are not.
    apply_pin(room.pins, ev)
    msg = rooms.messages.get(getattr(ev, "target_id", ""))
    if msg is None or msg.room_id != room.id:
        apply_cold(rooms, room, rec)
        return
    if isinstance(ev, MessageEdited | MessageRetracted | ReactionChanged):
        room.touches.add(msg.seq, rec.seq)
        rooms.cold_pages.forget(room.id, msg.seq)
    if isinstance(ev, MessageEdited):
        if not msg.retracted:
            msg.body, msg.body_event_id, msg.epoch = ev.body, env.id, ev.epoch
            msg.edited_ms = env.at_ms
    elif isinstance(ev, MessageRetracted):
        if (at := room.posts.find(msg.id)) >= 0:
            room.posts.retract(at)
        if not msg.retracted and (not msg.thread_root or msg.echo):
            room.unread.retract(msg.author_id, msg.seq)
        msg.retracted, msg.body, msg.reactions = True, "", {}
        room.tombstones[msg.seq] = msg
        room.attached.pop(msg.seq, None)
        room.remove_attachments(msg.attachments)
    elif isinstance(ev, ReactionChanged):
        key = stored_reaction(ev.shortcode)
        users = msg.reactions.setdefault(key, [])
        if ev.added and ev.user_id not in users:
            users.append(sys.intern(ev.user_id))
        elif not ev.added and ev.user_id in users:
            users.remove(ev.user_id)
        if not users:
            del msg.reactions[key]
