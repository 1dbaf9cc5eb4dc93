"""Profile changes beyond the display name: custom status and avatar removal.

The status is personal data: the user actor seals it with the user's PII
DEK (``actors/users/status.py``), so it is shredded with the account. A
removed avatar's bytes are overwritten in the object store, not just
unlinked.
"""

from __future__ import annotations

from actors.users.directory import UserRecord
from actors.users.status import ClearStatus, RemoveAvatar, check_status
from chatto.bus.storage import OBJECTS
from chatto.messaging.attachments import avatar_object
from chatto.services import Services


async def _user_cmd(services: Services, user_id: str, command: object) -> UserRecord:
    done = await services.actors.ask("user", user_id, command)
    await services.projector.wait_for(done.last_seq)
    user = services.directory.get(user_id)
    assert user is not None
    return user


async def set_status(services: Services, user_id: str, text: str, emoji: str) -> UserRecord:
    return await _user_cmd(services, user_id, check_status(text, emoji))


async def clear_status(services: Services, user_id: str) -> UserRecord:
    user = services.directory.get(user_id)
    if user is not None and not user.status_text and not user.status_emoji:
        return user
    return await _user_cmd(services, user_id, ClearStatus())


async def remove_avatar(services: Services, user_id: str) -> UserRecord:
    user = services.directory.get(user_id)
    if user is not None and user.avatar is None:
        return user
    user = await _user_cmd(services, user_id, RemoveAvatar())
    await services.bridge.obj_erase(OBJECTS, avatar_object(user_id))
    return user
