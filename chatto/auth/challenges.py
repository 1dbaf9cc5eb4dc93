"""Email verification codes and single-use links, stored as keyed verifiers.

A code challenge lives at ``email_otp.<HMAC(scope || email)>`` with a TTL
(15 min): it holds the HMAC of the current code, the wrong attempts (at most
5) and the codes sent (at most 10). Completion and reset tokens live at
``registration_completion.<HMAC(token)>`` / ``password_reset.<HMAC(token)>``
and are consumed exactly once. An email kept in a record is sealed with a
key derived from the server secret.
"""

from __future__ import annotations

import base64

from chatto.auth.keyring import Keyring, new_code, new_token, same
from chatto.auth.records import RecordStore
from chatto.crypto import aead
from chatto.errors import ChattoError, InvalidInputError, StaleWriteError

MAX_ATTEMPTS = 5
MAX_SENDS = 10


class CodeError(InvalidInputError):
    """The code is wrong, expired or used up (the user's to fix)."""

    code = "INVALID_CODE"


class TokenError(InvalidInputError):
    """A link/token is unknown, expired or already used."""

    code = "INVALID_TOKEN"


class Challenges:
    """Codes, completion tokens and reset tokens."""

    def __init__(self, records: RecordStore, keyring: Keyring, code_ttl: int, reset_ttl: int):
        self._records = records
        self._keys = keyring
        self._seal_key = keyring.derive_key("runtime-records")
        self.code_ttl = code_ttl
        self.reset_ttl = reset_ttl

    def _code_key(self, scope: str, email: str) -> str:
        return "email_otp." + self._keys.verifier("email_otp:" + scope, email)

    async def start(self, scope: str, email: str) -> str | None:
        """A fresh code for (scope, email), or None if the send limit is reached."""
        key = self._code_key(scope, email)
        found = await self._records.get(key)
        attempts, sends = (0, 0) if found is None else (int(found[0]["a"]), int(found[0]["n"]))
        if sends >= MAX_SENDS:
            return None
        code = new_code()
        doc = {"c": self._keys.verifier("code", code), "a": attempts, "n": sends + 1}
        await self._records.put(key, doc, self.code_ttl)
        return code

    async def check(self, scope: str, email: str, code: str) -> None:
        """Consume the challenge if ``code`` is right; ``CodeError`` otherwise."""
        key = self._code_key(scope, email)
        for _ in range(3):
            found = await self._records.get(key)
            if found is None:
                raise CodeError("the code is invalid or has expired; request a new one")
            doc, revision = found
            if int(doc["a"]) >= MAX_ATTEMPTS:
                raise CodeError("too many wrong attempts; request a new code")
            if same(self._keys.verifier("code", code.strip()), str(doc["c"])):
                if await self._records.consume(key) is None:
                    raise CodeError("the code is invalid or has expired; request a new one")
                return
            doc["a"] = int(doc["a"]) + 1
            try:
                await self._records.update(key, doc, revision, self.code_ttl)
            except StaleWriteError:
                continue  # a concurrent attempt counted first: count ours again
            left = MAX_ATTEMPTS - doc["a"]
            raise CodeError(f"wrong code ({left} attempts left)")
        raise CodeError("the code could not be checked; try again")

    def _seal(self, purpose: str, value: str) -> str:
        sealed = aead.seal(self._seal_key, value.encode(), purpose.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def _open(self, purpose: str, blob: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(blob.encode())
            return aead.open_sealed(self._seal_key, raw, purpose.encode()).decode()
        except (ValueError, ChattoError) as exc:
            raise TokenError("the link is invalid or has expired") from exc

    async def issue_completion(self, email: str, invite_id: str = "") -> str:
        """A completion token for ``email``, carrying the checked invite's id, if any."""
        token = new_token()
        doc = {"e": self._seal("completion", email), "i": invite_id}
        await self._records.put(self._completion_key(token), doc, self.code_ttl)
        return token

    def _completion_key(self, token: str) -> str:
        return "registration_completion." + self._keys.verifier("registration_completion", token)

    async def peek_completion(self, token: str) -> tuple[str, str]:
        """The email and invite id a completion token is for, without using it up."""
        found = await self._records.get(self._completion_key(token))
        if found is None:
            raise TokenError("the registration link is invalid, used or expired")
        return self._open("completion", str(found[0].get("e", ""))), str(found[0].get("i", ""))

    async def consume_completion(self, token: str) -> str:
        doc = await self._records.consume(self._completion_key(token))
        if doc is None:
            raise TokenError("the registration link is invalid, used or expired")
        return self._open("completion", str(doc.get("e", "")))

    async def issue_reset(self, user_id: str, generation: int) -> str:
        token = new_token()
        key = "password_reset." + self._keys.verifier("password_reset", token)
        await self._records.put(key, {"u": user_id, "g": generation}, self.reset_ttl)
        return token

    async def consume_reset(self, token: str) -> tuple[str, int]:
        key = "password_reset." + self._keys.verifier("password_reset", token)
        doc = await self._records.consume(key)
        if doc is None:
            raise TokenError("the reset link is invalid, used or expired")
        return str(doc["u"]), int(doc["g"])

    async def issue_deletion(self, user_id: str, generation: int) -> str:
        """A 15-minute, single-use confirmation token for deleting an account."""
        token = new_token()
        key = "account_deletion_token." + self._keys.verifier("account_deletion", token)
        await self._records.put(key, {"u": user_id, "g": generation}, self.code_ttl)
        return token

    async def consume_deletion(self, token: str) -> tuple[str, int]:
        key = "account_deletion_token." + self._keys.verifier("account_deletion", token)
        doc = await self._records.consume(key)
        if doc is None:
            raise TokenError("the confirmation token is invalid, used or expired")
        return str(doc["u"]), int(doc["g"])
