"""The ``pkcs11`` master key: an AES-256 key that never leaves an HSM.

KEKs are sealed with AES-256-GCM computed inside the token (``CKM_AES_GCM``)
by a key that is sensitive and not extractable: the host never holds the
master key, so a copy of the disk, the config and the server's files still
needs the token (and its PIN) to open any KEK.

Sealed form: ``0x01 || iv (12 random bytes) || ciphertext || tag (16)``, with
the record's AAD as the GCM AAD. Random IVs are safe at this volume: the key
seals one record per KEK (a user) and per rotation, far below GCM's 2^32
random-IV bound.

The key id hashes the token's serial number, the key's label and its
``CKA_ID``: stable, not secret, and new for a key re-created under the same
label (``chatto keys init-hsm`` gives every key a random ``CKA_ID``).

PKCS#11 calls block: they run in a worker thread, one at a time per token
(a session is not thread-safe), never on the event loop. The PIN lives only
in ``TokenSettings`` (for a re-login after the token lost the session); no
repr, log line or error message shows it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import attrs
import pkcs11
import trio
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11
from pkcs11.types import DecryptMixin, EncryptMixin

from chatto.crypto.aead import DecryptionFailed
from chatto.crypto.master import MasterKeyError

T = TypeVar("T")

PIN_ENV = "CHATTO_KMS_PKCS11_PIN"
SEALED_VERSION = 0x01
IV_BYTES = 12
TAG_BYTES = 16
KEY_BITS = 256

# python-pkcs11 initialises each module once per process with
# C_Initialize(NULL), which promises the module that no two threads call it
# at once (SoftHSM then takes no locks of its own): every call into any
# module, from any token or key, holds this lock.
_MODULE_CALLS = threading.Lock()

# The token dropped the session or the login (an HSM restart, a finalised
# module): open a new session and try once more.
_SESSION_LOST = (
    p11.SessionHandleInvalid,
    p11.SessionClosed,
    p11.DeviceRemoved,
    p11.TokenNotPresent,
    p11.UserNotLoggedIn,
    p11.KeyHandleInvalid,
    p11.ObjectHandleInvalid,
)
# What a token answers when the tag, IV or length does not match (SoftHSM
# says CKR_GENERAL_ERROR): the sealed value is wrong, not the token.
_NOT_AUTHENTIC = (
    p11.GeneralError,
    p11.FunctionFailed,
    p11.EncryptedDataInvalid,
    p11.EncryptedDataLenRange,
    p11.DataInvalid,
    p11.DataLenRange,
)


@attrs.frozen
class TokenSettings:
    """Which module and token, and the PIN to log in with (never shown)."""

    module: str
    token_label: str
    pin: str = attrs.field(repr=False)


def read_pin(pin_file: Path | None, environ: Mapping[str, str] | None = None) -> str:
    """The PIN from ``CHATTO_KMS_PKCS11_PIN`` or ``pin_file`` (mode 0600)."""
    env = os.environ if environ is None else environ
    if env.get(PIN_ENV):
        return env[PIN_ENV]
    if pin_file is None:
        raise MasterKeyError(
            f"kms.provider = pkcs11 needs the token's PIN: set kms.pkcs11_pin_file or {PIN_ENV}"
        )
    try:
        text = pin_file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or "not UTF-8"
        raise MasterKeyError(f"cannot read PKCS#11 PIN file {pin_file}: {reason}") from None
    if pin_file.stat().st_mode & 0o077:
        raise MasterKeyError(f"PKCS#11 PIN file {pin_file} is readable by others: chmod 600 it")
    pin = text.strip()  # a newline from `echo` is not part of the PIN
    if not pin:
        raise MasterKeyError(f"PKCS#11 PIN file {pin_file} is empty")
    return pin


def key_id_of(serial: bytes, label: str, cka_id: bytes) -> str:
    """The public id of a token key (records name it; it opens nothing)."""
    digest = hashlib.sha256(b"chatto pkcs11 key id\x00")
    for part in (serial, label.encode(), cka_id):
        digest.update(len(part).to_bytes(4, "big") + part)
    return "p11-" + digest.hexdigest()[:16]


class Pkcs11Token:
    """One session with one token, shared by its keys; one call at a time."""

    def __init__(self, settings: TokenSettings, *, writable: bool = False) -> None:
        self._settings = settings
        self._writable = writable
        self._limiter = trio.CapacityLimiter(1)
        self._session: pkcs11.Session | None = None
        self._keys: dict[str, pkcs11.SecretKey] = {}
        self._ids: dict[str, str] = {}
        self.sessions_opened = 0

    @property
    def label(self) -> str:
        """The token's label (from the config)."""
        return self._settings.token_label

    async def connect(self) -> None:
        """Open the session and log in now, so a wrong PIN fails the start."""
        await self._run(lambda: self._session_now())

    async def master_key(self, label: str) -> Pkcs11MasterKey:
        """The token's AES-256 key ``label``, checked to be sensitive and not extractable."""
        await self._run(lambda: self._key(label))
        return Pkcs11MasterKey(self, label, self._ids[label])

    async def has_key(self, label: str) -> bool:
        """Whether a secret key ``label`` exists in the token."""
        return await self._run(lambda: bool(self._find(label)))

    async def generate_key(self, label: str) -> Pkcs11MasterKey:
        """Create an AES-256 key inside the token that can never leave it."""
        await self._run(lambda: self._generate(label))
        return await self.master_key(label)

    async def with_key(self, label: str, op: Callable[[pkcs11.SecretKey], T]) -> T:
        """``op(key)`` in the worker thread; the session is re-opened once if it was lost."""
        return await self._run(lambda: op(self._key(label)))

    async def aclose(self) -> None:
        """Close the session (and end this process's login on the token)."""
        with trio.move_on_after(5, shield=True):
            await trio.to_thread.run_sync(
                self._close_locked, abandon_on_cancel=True, limiter=self._limiter
            )

    # --- in the worker thread -------------------------------------------------

    async def _run(self, fn: Callable[[], T]) -> T:
        # A hung token must not hang a cancelled caller (or shutdown): the
        # thread is left to finish, and keeps the limiter until it does.
        return await trio.to_thread.run_sync(
            self._call, fn, limiter=self._limiter, abandon_on_cancel=True
        )

    def _call(self, fn: Callable[[], T]) -> T:
        with _MODULE_CALLS:
            try:
                try:
                    return fn()
                except _SESSION_LOST:
                    self._close()
                    return fn()
            except _SESSION_LOST as exc:
                self._close()
                raise MasterKeyError(
                    f"PKCS#11 token {self.label!r} is unavailable ({type(exc).__name__})"
                ) from None
            except p11.MechanismInvalid:
                raise MasterKeyError(
                    f"PKCS#11 token {self.label!r} does not offer AES-GCM (CKM_AES_GCM)"
                ) from None
            except p11.PKCS11Error as exc:
                # The class names the PKCS#11 return value; the text may quote arguments.
                raise MasterKeyError(
                    f"PKCS#11 call on token {self.label!r} failed ({type(exc).__name__})"
                ) from None

    def _session_now(self) -> pkcs11.Session:
        if self._session is None:
            self._session = self._open()
            self.sessions_opened += 1
        return self._session

    def _open(self) -> pkcs11.Session:
        s = self._settings
        if not Path(s.module).exists():
            raise MasterKeyError(f"PKCS#11 module {s.module} does not exist (kms.pkcs11_module)")
        try:
            lib = pkcs11.lib(s.module)
        except p11.PKCS11Error as exc:
            # python-pkcs11 names the path and the loader's reason (no PIN yet).
            raise MasterKeyError(f"cannot load PKCS#11 module {s.module}: {exc}") from None
        try:
            token = lib.get_token(token_label=s.token_label)
        except p11.NoSuchToken:
            raise MasterKeyError(
                f"no PKCS#11 token labelled {s.token_label!r} in {s.module}"
            ) from None
        except p11.MultipleTokensReturned:
            raise MasterKeyError(f"several PKCS#11 tokens are labelled {s.token_label!r}") from None
        try:
            return token.open(rw=self._writable, user_pin=s.pin)
        except p11.UserAlreadyLoggedIn:
            # Login belongs to the process, not the session: another session
            # of ours is logged in, and this one shares its login.
            return token.open(rw=self._writable)
        except p11.PinIncorrect:
            raise MasterKeyError(f"the PIN for PKCS#11 token {s.token_label!r} is wrong") from None
        except p11.PinLocked:
            raise MasterKeyError(f"the PIN of PKCS#11 token {s.token_label!r} is locked") from None
        except (p11.PinExpired, p11.PinInvalid, p11.PinLenRange, p11.UserPinNotInitialized) as e:
            raise MasterKeyError(
                f"PKCS#11 token {s.token_label!r} refused the PIN ({type(e).__name__})"
            ) from None

    def _find(self, label: str) -> list[pkcs11.SecretKey]:
        query = {Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.LABEL: label}
        return [
            k for k in self._session_now().get_objects(query) if isinstance(k, pkcs11.SecretKey)
        ]

    def _key(self, label: str) -> pkcs11.SecretKey:
        session = self._session_now()
        key = self._keys.get(label)
        if key is not None:
            return key
        found = self._find(label)
        where = f"key {label!r} in PKCS#11 token {self.label!r}"
        if not found:
            raise MasterKeyError(f"no {where}: create it with `chatto keys init-hsm`")
        if len(found) > 1:
            raise MasterKeyError(f"several keys are labelled {label!r} in {self.label!r}")
        key = found[0]
        if key.key_type != KeyType.AES or key[Attribute.VALUE_LEN] != KEY_BITS // 8:
            raise MasterKeyError(f"{where} is not an AES-256 key")
        if not (isinstance(key, EncryptMixin) and isinstance(key, DecryptMixin)):
            raise MasterKeyError(f"{where} may not encrypt and decrypt (CKA_ENCRYPT, CKA_DECRYPT)")
        if key[Attribute.EXTRACTABLE] or not key[Attribute.SENSITIVE]:
            raise MasterKeyError(
                f"{where} can leave the token (extractable or not sensitive): "
                "create one with `chatto keys init-hsm`"
            )
        ident = key_id_of(session.token.serial, label, key[Attribute.ID])
        if self._ids.setdefault(label, ident) != ident:
            raise MasterKeyError(f"{where} was replaced by another key while in use")
        self._keys[label] = key
        return key

    def _generate(self, label: str) -> None:
        if self._find(label):
            raise MasterKeyError(f"PKCS#11 token {self.label!r} already holds a key {label!r}")
        self._session_now().generate_key(
            KeyType.AES,
            KEY_BITS,
            id=secrets.token_bytes(16),
            label=label,
            store=True,
            # Encrypt/decrypt only: no wrapping, signing or derivation with it.
            capabilities=MechanismFlag.ENCRYPT | MechanismFlag.DECRYPT,
            template={
                Attribute.EXTRACTABLE: False,
                Attribute.SENSITIVE: True,
                Attribute.PRIVATE: True,
                Attribute.MODIFIABLE: False,
            },
        )

    def _close_locked(self) -> None:
        with _MODULE_CALLS:
            self._close()

    def _close(self) -> None:
        session, self._session = self._session, None
        self._keys.clear()
        if session is not None:
            with contextlib.suppress(p11.PKCS11Error):  # the token may be gone already
                session.close()


def _bytes(out: bytes | Iterator[bytes]) -> bytes:
    # python-pkcs11 answers bytes for bytes in, an iterator only for an iterator in.
    assert isinstance(out, bytes)
    return out


class Pkcs11MasterKey:
    """A master key inside a PKCS#11 token (``MasterKey``): AES-256-GCM by the token."""

    def __init__(self, token: Pkcs11Token, label: str, key_id: str) -> None:
        self._token = token
        self._label = label
        self.key_id = key_id
        self._wraps = self._unwraps = self._failed = 0

    def __repr__(self) -> str:
        return f"Pkcs11MasterKey(id={self.key_id}, label={self._label!r})"

    def statistics(self) -> dict[str, int]:
        """Operations in the token: wraps, unwraps, failed_unwraps; sessions_opened."""
        return {
            "wraps": self._wraps,
            "unwraps": self._unwraps,
            "failed_unwraps": self._failed,
            "sessions_opened": self._token.sessions_opened,
        }

    async def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal ``plaintext`` (a KEK) bound to ``aad``, inside the token."""
        iv = secrets.token_bytes(IV_BYTES)
        params = pkcs11.GCMParams(iv, aad, TAG_BYTES * 8)

        def encrypt(key: pkcs11.SecretKey) -> bytes:
            assert isinstance(key, EncryptMixin)  # checked when the key was found
            return _bytes(
                key.encrypt(plaintext, mechanism=Mechanism.AES_GCM, mechanism_param=params)
            )

        sealed = await self._token.with_key(self._label, encrypt)
        self._wraps += 1
        return bytes([SEALED_VERSION]) + iv + sealed

    async def unwrap(self, sealed: bytes, aad: bytes) -> bytes:
        """Open what ``wrap`` sealed; ``DecryptionFailed`` if it is not authentic."""
        if len(sealed) < 1 + IV_BYTES + TAG_BYTES or sealed[0] != SEALED_VERSION:
            raise DecryptionFailed("sealed key has an unknown format")
        params = pkcs11.GCMParams(sealed[1 : 1 + IV_BYTES], aad, TAG_BYTES * 8)
        body = sealed[1 + IV_BYTES :]

        def decrypt(key: pkcs11.SecretKey) -> bytes | None:
            assert isinstance(key, DecryptMixin)
            try:
                return _bytes(
                    key.decrypt(body, mechanism=Mechanism.AES_GCM, mechanism_param=params)
                )
            except _NOT_AUTHENTIC:
                return None

        self._unwraps += 1
        plaintext = await self._token.with_key(self._label, decrypt)
        if plaintext is None:
            self._failed += 1
            raise DecryptionFailed("sealed key does not open with this master key")
        return plaintext


@asynccontextmanager
async def open_pkcs11_token(
    settings: TokenSettings, *, writable: bool = False
) -> AsyncIterator[Pkcs11Token]:
    """A logged-in session with the token, closed on exit; ``MasterKeyError`` if it fails."""
    token = Pkcs11Token(settings, writable=writable)
    try:
        await token.connect()
        yield token
    finally:
        await token.aclose()


@asynccontextmanager
async def open_pkcs11_master_key(
    settings: TokenSettings, label: str
) -> AsyncIterator[Pkcs11MasterKey]:
    """The token's key ``label`` as a ``MasterKey`` for as long as the block runs."""
    async with open_pkcs11_token(settings) as token:
        yield await token.master_key(label)
