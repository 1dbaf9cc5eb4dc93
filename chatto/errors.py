"""The one error hierarchy of the shell and the domain.

Every error the server raises on purpose is a ``ChattoError``: it carries a
stable machine-readable ``code`` and the HTTP status a transport should use.
Library errors are translated into these at the boundary (``raise ... from``).
Messages must never contain secrets: they reach logs and API clients.
"""

from __future__ import annotations


class ChattoError(Exception):
    """Base of every deliberate error; ``code`` is stable, ``message`` is for humans."""

    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(ChattoError):
    """The configuration is invalid: the operator's fault; names the bad key."""

    code = "CONFIG_INVALID"


class StartupError(ChattoError):
    """The server could not start (port in use, NATS unreachable, ...)."""

    code = "STARTUP_FAILED"


class AcmeError(ChattoError):
    """No certificate from the ACME CA: the CA refused, was unreachable, or it
    could not validate the domain (DNS or the port-80 listener is wrong)."""

    code = "ACME_FAILED"
    http_status = 502


class UnavailableError(ChattoError):
    """A backing service (NATS, JetStream) is unreachable or timed out."""

    code = "UNAVAILABLE"
    http_status = 503


class BusyError(ChattoError):
    """A bounded queue is full: the caller should retry later."""

    code = "BUSY"
    http_status = 503


class ConflictError(ChattoError):
    """Optimistic concurrency failed more times than the retry bound allows."""

    code = "CONFLICT"
    http_status = 409


class StaleWriteError(ConflictError):
    """An append lost an optimistic-concurrency race: the entity changed first."""

    code = "WRONG_LAST_SEQUENCE"


class DeadlineError(ChattoError):
    """A bounded wait (an actor ask, a NATS request) ran out of time."""

    code = "TIMEOUT"
    http_status = 504


class UnauthenticatedError(ChattoError):
    """The request carries no valid credentials."""

    code = "UNAUTHENTICATED"
    http_status = 401


class ForbiddenError(ChattoError):
    """The caller is authenticated but lacks the permission."""

    code = "FORBIDDEN"
    http_status = 403


class NotFoundError(ChattoError):
    """The entity does not exist (or the caller may not know it exists)."""

    code = "NOT_FOUND"
    http_status = 404


class InvalidInputError(ChattoError):
    """The request is malformed or violates a documented limit."""

    code = "BAD_USER_INPUT"
    http_status = 400


def first_chatto_error(group: BaseExceptionGroup[ChattoError]) -> ChattoError:
    """The first ``ChattoError`` inside (nested) groups, for one-line CLI errors."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    assert isinstance(exc, ChattoError)
    return exc
