"""Private files the CLI and the server write once: config and master key."""

from __future__ import annotations

import os
from pathlib import Path


def create_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600, exclusively and durably.

    ``FileExistsError`` if it exists (O_EXCL makes "does it exist?" and
    "create it" one step: no race can replace a file that appeared in
    between); any other ``OSError`` leaves no half-written file behind, so a
    retry is not refused.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            # The umask may have stripped bits from the mode given to os.open.
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        raise
