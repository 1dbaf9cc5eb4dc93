"""Account flows: registration, login, passwords, email verification.

Enumeration resistance is designed in: registration and forgot-password do
the same storage work and give the same answer whether or not the address
is known (mail goes through the outbox, so SMTP time is invisible); every
login costs exactly one bcrypt comparison (a dummy hash for unknown users).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from actors.audit import RecordUnknownLogin
from actors.ids import new_id
from actors.projector import Projector
from actors.runtime import ActorSystem
from actors.users.actor import (
    CreateUser,
    RecordLogin,
    RecordRevocation,
    SetPassword,
    UpdateProfile,
    VerifyEmail,
)
from actors.users.directory import UserDirectory, UserRecord
from chatto.auth.challenges import Challenges, TokenError
from chatto.auth.identity import check_display_name, check_login, normalize_email
from chatto.auth.invites import Invites
from chatto.auth.keyring import Keyring
from chatto.auth.passwords import PasswordHasher, check_rules
from chatto.auth.records import RecordStore
from chatto.bus.buckets import KeyExistsError
from chatto.errors import ChattoError, ConflictError, ForbiddenError, InvalidInputError
from chatto.mail import Mail, Outbox


class InvalidCredentials(ChattoError):
    """Login or password wrong (never says which)."""

    code = "INVALID_CREDENTIALS"
    http_status = 401


class LoginTaken(ConflictError):
    code = "LOGIN_TAKEN"


class EmailTaken(ConflictError):
    code = "EMAIL_TAKEN"


@attrs.frozen
class AuthSettings:
    server_url: str
    # "open", "invite-only" or "closed" (``auth.registration``).
    registration: str = "open"
    # Addresses in owners.emails may sign up without an invite (the first
    # owner of an invite-only server has nobody to invite them).
    owner_emails: frozenset[str] = frozenset()

    def admits(self, email: str) -> bool:
        """Whether ``email`` may sign up without an invite."""
        return self.registration == "open" or (
            self.registration == "invite-only" and email in self.owner_emails
        )


INVITE_ONLY_MAIL = (
    "Someone asked to create a Chatto account with this address, but this server "
    "accepts new accounts only through an invite link. If it was you, ask an "
    "administrator for an invite; otherwise ignore this mail."
)


class AccountService:
    """The account flows; transports call these and map errors to answers."""

    def __init__(
        self,
        settings: AuthSettings,
        actors: ActorSystem,
        directory: UserDirectory,
        projector: Projector,
        records: RecordStore,
        keyring: Keyring,
        challenges: Challenges,
        hasher: PasswordHasher,
        outbox: Outbox,
    ) -> None:
        self.settings = settings
        self._actors = actors
        self.directory = directory
        self._projector = projector
        self.records = records
        self.keyring = keyring
        self.challenges = challenges
        self.hasher = hasher
        self._outbox = outbox
        self.invites = Invites(records, keyring)
        # Called with the new user's id once registration is complete
        # (joining the seeded rooms); set up by the server's wiring.
        self.after_register: list[Callable[[str], Awaitable[None]]] = []
        # Called with the new user's id and the invite's room (if it names one).
        self.after_invite: list[Callable[[str, str], Awaitable[None]]] = []

    def _claim_key(self, kind: str, value: str) -> str:
        return f"{kind}.{self.keyring.index_key(kind, value)}"

    # --- registration ---------------------------------------------------------
    async def check_invite(self, invite: str | None) -> str:
        """The id of the usable invite ``invite`` names ("" for none).

        A closed server refuses every invite the way it refuses a bad one;
        without an invite a closed server refuses outright (the same answer
        for every address: the mode is public).
        """
        closed = self.settings.registration == "closed"
        if invite is not None:
            if closed:
                await self.invites.refuse(invite)
            return (await self.invites.check(invite)).id
        if closed:
            raise ForbiddenError("registration is closed on this server")
        return ""

    async def request_registration(self, raw_email: str, invite: str | None = None) -> None:
        """Send a code (or, for a taken address, a notice); same answer either way.

        On an invite-only server without an invite, addresses other than the
        owners' get a notice instead of a code: the answer stays the same, so
        it tells nothing about owners.emails.
        """
        invited = bool(await self.check_invite(invite))
        email = normalize_email(raw_email)
        taken = await self.records.get(self._claim_key("email", email)) is not None
        # One challenge scope whether or not the address is taken: a wrong
        # code then meets the same stored challenge and gets the same answer
        # ("wrong code, N left") after the same work. The code for a taken
        # address is never mailed, and completing with it fails on the claim.
        code = await self.challenges.start("register", email)
        if code is None:
            return
        if taken:
            body = (
                "Someone asked to create a Chatto account with this address, which "
                "already has one. If it was you, log in or reset your password; "
                "otherwise ignore this mail."
            )
            self._outbox.enqueue(Mail(email, "Chatto sign-up attempt", body))
        elif not invited and not self.settings.admits(email):
            self._outbox.enqueue(Mail(email, "Chatto sign-up attempt", INVITE_ONLY_MAIL))
        else:
            body = f"Your Chatto verification code is {code}. It expires in 15 minutes."
            self._outbox.enqueue(Mail(email, "Your Chatto verification code", body))

    async def verify_registration_code(
        self, raw_email: str, code: str, invite: str | None = None
    ) -> str:
        """Check the code; return a completion token (15 min, single use)
        that carries the invite, checked again here."""
        invite_id = await self.check_invite(invite)
        email = normalize_email(raw_email)
        # The code first: whether an address may sign up without an invite
        # (owners.emails) is only told to whoever holds its code.
        await self.challenges.check("register", email, code)
        self._require_admitted(email, invite_id)
        return await self.challenges.issue_completion(email, invite_id)

    def _require_admitted(self, email: str, invite_id: str) -> None:
        if self.settings.registration == "closed":
            raise ForbiddenError("registration is closed on this server")
        if not invite_id and not self.settings.admits(email):
            raise ForbiddenError("this server accepts new accounts only through an invite link")

    async def complete_registration(self, token: str, login: str, password: str) -> UserRecord:
        """Create the user with a verified email; the token is used up on success,
        and so is one use of the invite it carries (atomically: of concurrent
        sign-ups on an invite's last use exactly one gets an account)."""
        check_login(login)
        check_rules(password)
        email, invite_id = await self.challenges.peek_completion(token)
        self._require_admitted(email, invite_id)
        user_id = new_id()
        login_key = self._claim_key("login", login.lower())
        email_key = self._claim_key("email", email)
        try:
            await self.records.create(login_key, {"u": user_id})
        except KeyExistsError:
            raise LoginTaken("that login is taken; the link stays valid, pick another") from None
        try:
            await self.records.create(email_key, {"u": user_id})
            await self.challenges.consume_completion(token)
            invite = await self.invites.use(invite_id) if invite_id else None
        except KeyExistsError:
            await self.records.delete(login_key)
            raise EmailTaken("this address already belongs to an account") from None
        except ChattoError:  # the token or the invite's last use went to someone else
            await self.records.delete(login_key)
            await self.records.delete(email_key)
            raise
        password_hash = await self.hasher.hash(password)
        done = await self._actors.ask(
            "user", user_id, CreateUser(login, login, email, password_hash)
        )
        await self._projector.wait_for(done.last_seq)
        for hook in self.after_register:
            await hook(user_id)
        if invite is not None and invite.room_id:
            for invite_hook in self.after_invite:
                await invite_hook(user_id, invite.room_id)
        user = self.directory.get(user_id)
        assert user is not None
        return user

    async def ensure_claims(self) -> int:
        """Re-create missing login/email claims, once per server secret.

        Claim keys are HMACs under ``core.secret_key``: after a restore under
        a different secret the old claims are unreachable, so uniqueness of
        existing logins and emails would silently lapse. Returns the number
        of claims written.
        """
        marker = "claims_checked." + self.keyring.index_key("claims", "v1")[:24]
        if await self.records.get(marker) is not None:
            return 0
        written = 0
        for user in list(self.directory.users.values()):
            if not user.registered or user.deleting or not user.login:
                continue
            claims = [("login", user.login.lower()), *(("email", e) for e in user.emails)]
            for kind, value in claims:
                try:
                    await self.records.create(self._claim_key(kind, value), {"u": user.id})
                    written += 1
                except KeyExistsError:
                    pass
        await self.records.put(marker, {"at": 1}, None)
        return written

    # --- login -----------------------------------------------------------------
    def _lookup(self, identifier: str) -> UserRecord | None:
        ident = identifier.strip()
        if "@" in ident:
            try:
                return self.directory.find_email(normalize_email(ident))
            except InvalidInputError:
                return None
        return self.directory.find_login(ident)

    async def login(self, identifier: str, password: str, ip: str) -> UserRecord:
        """Check a password; exactly one bcrypt comparison whatever happens."""
        user = self._lookup(identifier)
        ok = await self.hasher.verify(password, user.password_hash if user else None)
        ip_hash = self.keyring.ip_hash(ip)
        if user is None:
            login_hash = self.keyring.index_key("login", identifier.strip().lower())
            await self._actors.ask("audit", "", RecordUnknownLogin(login_hash, ip_hash))
            raise InvalidCredentials("invalid login or password")
        await self._actors.ask("user", user.id, RecordLogin(ok, "password", ip_hash))
        if not ok:
            raise InvalidCredentials("invalid login or password")
        return user

    # --- passwords -------------------------------------------------------------
    async def change_password(self, user_id: str, current: str, new: str) -> int:
        """Verify the current password, set the new one; returns the new generation."""
        check_rules(new)
        user = self.directory.get(user_id)
        ok = await self.hasher.verify(current, user.password_hash if user else None)
        if user is None or not ok:
            raise InvalidCredentials("the current password is wrong")
        return await self._set_password(user_id, await self.hasher.hash(new), "change", None)

    async def _set_password(
        self, user_id: str, password_hash: str, reason: str, expected: int | None
    ) -> int:
        done = await self._actors.ask("user", user_id, SetPassword(password_hash, reason, expected))
        await self._projector.wait_for(done.last_seq)
        return int(done.value)

    async def forgot_password(self, raw_email: str) -> None:
        """Mail a reset link if the address is a verified one; same answer if not."""
        email = normalize_email(raw_email)
        user = self.directory.find_email(email)
        token = await self.challenges.issue_reset(
            user.id if user else "-", user.generation if user else -1
        )
        if user is not None:
            link = f"{self.settings.server_url.rstrip('/')}/reset-password?token={token}"
            body = f"Reset your Chatto password within an hour: {link}"
            self._outbox.enqueue(Mail(email, "Reset your Chatto password", body))

    async def reset_password(self, token: str, new: str) -> None:
        check_rules(new)
        user_id, generation = await self.challenges.consume_reset(token)
        if self.directory.get(user_id) is None:
            raise TokenError("the reset link is invalid, used or expired")
        password_hash = await self.hasher.hash(new)
        try:
            await self._set_password(user_id, password_hash, "reset", generation)
        except ConflictError:
            raise TokenError("the reset link is no longer valid") from None

    async def record_revocation(self, user_id: str, kind: str) -> None:
        """Audit a logout or token revocation."""
        await self._actors.ask("user", user_id, RecordRevocation(kind))

    # --- emails and profile -----------------------------------------------------
    async def request_email_code(self, user_id: str, raw_email: str) -> None:
        """Send a code to a new address; answers the same if it is taken."""
        email = normalize_email(raw_email)
        taken = await self.records.get(self._claim_key("email", email)) is not None
        code = await self.challenges.start(f"verify:{user_id}", email)
        if code is not None and not taken:
            body = f"Your Chatto code to add this address is {code}. It expires in 15 minutes."
            self._outbox.enqueue(Mail(email, "Confirm your email address", body))

    async def confirm_email_code(self, user_id: str, raw_email: str, code: str) -> UserRecord:
        email = normalize_email(raw_email)
        await self.challenges.check(f"verify:{user_id}", email, code)
        try:
            await self.records.create(self._claim_key("email", email), {"u": user_id})
        except KeyExistsError:
            raise EmailTaken("this address already belongs to an account") from None
        done = await self._actors.ask("user", user_id, VerifyEmail(email))
        await self._projector.wait_for(done.last_seq)
        user = self.directory.get(user_id)
        assert user is not None
        return user

    async def update_profile(self, user_id: str, display_name: str) -> UserRecord:
        name = check_display_name(display_name)
        done = await self._actors.ask("user", user_id, UpdateProfile(name))
        await self._projector.wait_for(done.last_seq)
        user = self.directory.get(user_id)
        assert user is not None
        return user
