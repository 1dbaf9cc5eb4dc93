"""Validation and normalisation of logins, emails and display names."""

from __future__ import annotations

import re
import unicodedata

from chatto.errors import InvalidInputError

LOGIN_RE = re.compile(r"^[A-Za-z0-9._-]{2,32}$")
MAX_EMAIL = 254
MAX_DISPLAY_NAME = 64


def normalize_email(email: str) -> str:
    """Trimmed, lower-cased address; ``InvalidInputError`` if it is not one."""
    value = email.strip().lower()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain
        or len(value) > MAX_EMAIL
        or any(ch.isspace() or ord(ch) < 32 for ch in value)
    ):
        raise InvalidInputError("that is not a valid email address")
    return value


def check_login(login: str) -> str:
    if not LOGIN_RE.match(login):
        raise InvalidInputError(
            "login must be 2 to 32 characters: letters, digits, '.', '_' or '-'"
        )
    return login


def check_display_name(name: str) -> str:
    value = name.strip()
    if not 1 <= len(value) <= MAX_DISPLAY_NAME:
        raise InvalidInputError(f"display name must be 1 to {MAX_DISPLAY_NAME} characters")
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise InvalidInputError("display name must not contain control characters")
    return value
