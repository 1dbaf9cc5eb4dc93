"""Message-body keys: the author's key for sealing, any author's for opening.

Keys come from the KMS actor (which alone touches KEKs) and are kept in a
bounded LRU here so a page of 50 messages costs 50 in-memory lookups, not
50 actor round trips. A shredded key (deleted account) opens nothing.
"""

from __future__ import annotations

import base64
from collections import OrderedDict

from actors.kms.actor import Kms
from actors.rooms.commands import BodyKey
from actors.rooms.directory import MessageView
from actors.runtime import ActorSystem
from actors.users.actor import EnsureBodyKey
from actors.users.directory import UserDirectory
from actors.users.events import BODY_PURPOSE, UserDEKGenerated
from chatto.crypto import aad, aead
from chatto.errors import ChattoError

# Bodies written before DEK epochs: ChaCha20-Poly1305 under the raw per-user
# key ``user.<id>`` in ENCRYPTION_KEYS, no AAD. Stored with epoch 0.
LEGACY_EPOCH = 0


class NotCached:
    """``BodyKeys.open_cached``'s answer when the key must be fetched first."""


NOT_CACHED = NotCached()


class BodyKeys:
    """Seal-side and open-side access to message-body DEKs."""

    def __init__(
        self, actors: ActorSystem, kms: Kms, users: UserDirectory, size: int = 4096
    ) -> None:
        self._actors = actors
        self._kms = kms
        self._users = users
        self._cache: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._size = size
        self.opened = 0

    def _remember(self, key: tuple[str, int], value: bytes) -> None:
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    def forget_user(self, user_id: str) -> None:
        for key in [k for k in self._cache if k[0] == user_id]:
            del self._cache[key]

    async def author_key(self, user_id: str) -> BodyKey:
        """The author's current epoch key (created on the first message)."""
        done = await self._actors.ask("user", user_id, EnsureBodyKey())
        handle: UserDEKGenerated = done.value
        cached = self._cache.get((user_id, handle.epoch))
        if cached is None:
            context = aad.dek_wrap_aad(user_id, BODY_PURPOSE, handle.epoch)
            cached = await self._kms.unwrap_dek(handle.dek_ref, handle.kek_ref, context)
            self._remember((user_id, handle.epoch), cached)
        return BodyKey(cached, handle.epoch)

    async def key_for(self, user_id: str, epoch: int) -> bytes | None:
        """Any author's body key for an epoch (None once shredded)."""
        return await self._key_for(user_id, epoch)

    async def _key_for(self, user_id: str, epoch: int) -> bytes | None:
        cached = self._cache.get((user_id, epoch))
        if cached is not None:
            self._cache.move_to_end((user_id, epoch))
            return cached
        if epoch == LEGACY_EPOCH:
            try:
                key = await self._kms.legacy_user_key(user_id)
            except ChattoError:
                return None
            self._remember((user_id, epoch), key)
            return key
        refs = self._users.deks.get((user_id, BODY_PURPOSE, epoch))
        if refs is None:
            return None
        context = aad.dek_wrap_aad(user_id, BODY_PURPOSE, epoch)
        try:
            key = await self._kms.unwrap_dek(refs[0], refs[1], context)
        except ChattoError:
            return None
        self._remember((user_id, epoch), key)
        return key

    def open_cached(self, msg: MessageView) -> str | NotCached | None:
        """``open_body`` without waiting: ``NOT_CACHED`` when the key is not in memory."""
        if msg.retracted or not msg.body:
            return None
        key = self._cache.get((msg.author_id, msg.epoch))
        if key is None:
            return NOT_CACHED
        self._cache.move_to_end((msg.author_id, msg.epoch))
        return self._open(msg, key)

    async def open_body(self, msg: MessageView) -> str | None:
        """The plaintext body, or None (retracted, or the key is gone)."""
        if msg.retracted or not msg.body:
            return None
        key = await self._key_for(msg.author_id, msg.epoch)
        if key is None:
            return None
        return self._open(msg, key)

    def _open(self, msg: MessageView, key: bytes) -> str:
        self.opened += 1
        blob = base64.urlsafe_b64decode(msg.body)
        if msg.epoch == LEGACY_EPOCH:
            return aead.open_legacy_v1(key, blob).decode("utf-8")
        context = aad.body_aad(msg.body_event_id, msg.id, msg.room_id, msg.author_id, msg.epoch)
        return aead.open_sealed(key, blob, context).decode("utf-8")
