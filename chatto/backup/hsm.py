"""``chatto keys init-hsm`` and ``chatto keys rotate-master`` with an HSM key.

``init-hsm`` creates the master key inside the token: AES-256, sensitive,
never extractable, for encryption and decryption only, with a random
``CKA_ID`` (so a key re-created under the same label gets a new key id).

Rotation re-seals every KEK under a token key (``rewrap_all``: compare-and-
set, the check record last, resumable by running it again). The old key is
the one the check record names: the configured token key (rotating inside
the HSM to ``--new-key-label``) or the local key file (moving a server onto
an HSM). The old key is never destroyed here: it stays in its token or file
until the operator destroys it, once no older backup needs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.kms.records import MasterKey, sealed_by
from chatto.backup.commands import open_store
from chatto.bus.storage import ENCRYPTION_KEYS, bootstrap_storage
from chatto.config import Config
from chatto.crypto.master import MasterKeyError
from chatto.errors import StartupError
from chatto.kms_setup import CHECK, load_local_key, rewrap_all, token_settings

if TYPE_CHECKING:
    # Imported where used: python-pkcs11 is an optional extra.
    from chatto.crypto.pkcs11 import Pkcs11Token


async def init_hsm(config: Config, label: str | None) -> tuple[str, str]:
    """Create the master key ``label`` (default ``kms.pkcs11_key_label``); (label, key id)."""
    label = label or config.kms.pkcs11_key_label
    try:
        settings = token_settings(config)
        from chatto.crypto.pkcs11 import open_pkcs11_token

        async with open_pkcs11_token(settings, writable=True) as token:
            key = await token.generate_key(label)
    except MasterKeyError as exc:
        raise StartupError(exc.message) from None
    return label, key.key_id


async def rotate_to_token(config: Config, new_label: str | None) -> tuple[int, int, str, str]:
    """Re-seal every KEK under the token key ``new_label`` (created if absent), or the
    configured key when the store is still sealed by the key file.

    Returns (re-sealed, already done, the new key's label, its id). The
    server must be stopped.
    """
    target = new_label or config.kms.pkcs11_key_label
    try:
        settings = token_settings(config)
        from chatto.crypto.pkcs11 import open_pkcs11_token

        async with (
            open_pkcs11_token(settings, writable=True) as token,
            open_store(config, allow_running=False) as bridge,
        ):
            await bootstrap_storage(bridge, config.nats.replicas)
            entry = await bridge.kv_get(ENCRYPTION_KEYS, CHECK)
            sealed_id = "" if entry is None else sealed_by(entry.value)
            if await token.has_key(target):
                new = await token.master_key(target)
            else:
                new = await token.generate_key(target)
            old = await _sealing_key(config, token, sealed_id, new)
            done, skipped = await rewrap_all(bridge, old, new)
    except MasterKeyError as exc:
        raise StartupError(exc.message) from None
    return done, skipped, target, new.key_id


async def _sealing_key(
    config: Config, token: Pkcs11Token, sealed_id: str, new: MasterKey
) -> MasterKey:
    """The key that sealed the store: the configured token key or the key file."""
    if sealed_id in ("", new.key_id):
        return new  # nothing sealed yet, or the check record is done: nothing to open
    configured = config.kms.pkcs11_key_label
    if await token.has_key(configured):
        key = await token.master_key(configured)
        if key.key_id == sealed_id:
            return key
    local = load_local_key(config, create=False)
    if local is not None and local.key_id == sealed_id:
        return local
    raise StartupError(
        f"the stored keys are sealed by master key {sealed_id}, which is neither the key "
        f"{configured!r} in token {token.label!r} nor the key file {config.master_key_path}"
    )
