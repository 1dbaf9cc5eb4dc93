"""A throw-away SoftHSM token directory (tests and ``scripts/bench_kms.py``).

SoftHSM reads ``SOFTHSM2_CONF`` once, when the module is first initialised
in a process, and sees only the tokens that exist then: create every token
a process will use before anything loads the module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import attrs

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
SO_PIN = "so-pin-0123456789"


def softhsm_available() -> bool:
    """Whether Debian's softhsm2 (the module and ``softhsm2-util``) is installed."""
    return Path(MODULE).exists() and shutil.which("softhsm2-util") is not None


@attrs.frozen
class SoftHsm:
    """A token directory: its config file, the user PIN and a 0600 file holding it."""

    conf: Path
    pin: str = attrs.field(repr=False)
    pin_file: Path

    def env(self) -> dict[str, str]:
        """What a child process needs to see these tokens."""
        return {"SOFTHSM2_CONF": str(self.conf)}


def make_softhsm(root: Path, labels: Sequence[str], pin: str) -> SoftHsm:
    """Tokens ``labels`` (all with user PIN ``pin``) in a new directory under ``root``."""
    tokens = root / "tokens"
    tokens.mkdir(parents=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        "slots.removable = false\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    for label in labels:
        args = ["--init-token", "--free", "--label", label, "--so-pin", SO_PIN, "--pin", pin]
        subprocess.run(
            ["softhsm2-util", *args],
            env=env,
            check=True,
            capture_output=True,
        )
    pin_file = root / "pin"
    fd = os.open(pin_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(pin + "\n")
    return SoftHsm(conf, pin, pin_file)
