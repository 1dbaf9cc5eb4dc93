"""Every process forgets a deleted user's keys as soon as it sees the event.

The KMS actor and ``BodyKeys`` of each process cache unwrapped keys; the
process that runs a deletion shreds the records and its own caches, and
this read model makes every other process drop its copies when the
``user.deleted`` event reaches its projector (not only when caches idle out).
"""

from __future__ import annotations

import logging

from actors.events import Recorded
from actors.kms.actor import EvictKeys
from actors.runtime import ActorSystem
from actors.users.directory import UserDirectory
from actors.users.events import UserDeleted
from chatto.errors import ChattoError
from chatto.messaging.keys import BodyKeys

log = logging.getLogger(__name__)


class ShredFollower:
    """A read model that evicts cached keys of users deleted anywhere."""

    # Keeps no state from history: a start from a projector snapshot need not
    # replay anything into it (caches are empty at start anyway).
    replay_free = True

    def __init__(self, actors: ActorSystem, users: UserDirectory, keys: BodyKeys) -> None:
        self._actors = actors
        self._users = users
        self._keys = keys

    def apply(self, rec: Recorded) -> None:
        if not isinstance(rec.envelope.event, UserDeleted):
            return
        uid = rec.envelope.entity.id
        refs = [r for (u, _p, _e), r in self._users.deks.items() if u == uid]
        self._keys.forget_user(uid)
        command = EvictKeys(tuple({k for _d, k in refs}), tuple(d for d, _k in refs))
        try:
            self._actors.tell("kms", "", command)
        except ChattoError:
            log.warning("could not tell the KMS actor to evict a deleted user's keys")
