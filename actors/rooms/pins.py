"""Pinned messages of a room: the rules, shared by the actor and the read model.

A room pins at most ``MAX_PINS`` messages, oldest pin first. Only a live
message can be pinned; a retracted message drops out of the pins without an
event of its own (the retraction says it all), on both sides alike. Pins
hold message ids only, never content, so shredding an account needs nothing
here: its messages are retracted, so its pins go with them.
"""

from __future__ import annotations

from actors.entity import Decision
from actors.events import Event
from actors.rooms.commands import PinMessage
from actors.rooms.events import MessagePinned, MessageRetracted, MessageUnpinned
from actors.rooms.rules import Msg
from chatto.errors import ConflictError, NotFoundError

MAX_PINS = 50


def decide_pin(pins: list[str], msg: Msg | None, c: PinMessage) -> Decision:
    """Pinning twice or unpinning what is not pinned changes nothing."""
    if not c.pin:
        return Decision([MessageUnpinned(c.target_id, c.by)] if c.target_id in pins else [])
    if msg is None or msg.retracted:
        raise NotFoundError("no such message in this room")
    if c.target_id in pins:
        return Decision()
    if len(pins) >= MAX_PINS:
        raise ConflictError(f"a room holds at most {MAX_PINS} pinned messages; unpin one first")
    return Decision([MessagePinned(c.target_id, c.by)])


def apply_pin(pins: list[str], ev: Event) -> None:
    """Follow a pin, an unpin or a retraction (in place)."""
    if isinstance(ev, MessagePinned):
        if ev.target_id not in pins:
            pins.append(ev.target_id)
    elif isinstance(ev, MessageUnpinned | MessageRetracted) and ev.target_id in pins:
        pins.remove(ev.target_id)
