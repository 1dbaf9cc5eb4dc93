"""``chatto init``: a complete config file with fresh random secrets."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from chatto.errors import ConfigError

TEMPLATE = """\
# Chatto configuration, written by `chatto init`. Keep this file private:
# it holds the server's secrets. Every key is documented in
# chatto.toml.example; any key can be overridden with CHATTO_<SECTION>_<KEY>.

[core]
secret_key = "{secret_key}"
data_dir = "./data"
server_name = "Chatto"

[webserver]
host = "127.0.0.1"
port = 4000
url = "http://localhost:4000"
cookie_signing_secret = "{cookie_signing_secret}"
cookie_encryption_secret = "{cookie_encryption_secret}"
asset_signing_secret = "{asset_signing_secret}"

[nats.embedded]
enabled = true
token = "{nats_token}"

[logging]
level = "info"
"""


def render_initial_config() -> str:
    """The config text with freshly generated secrets."""
    return TEMPLATE.format(
        secret_key=secrets.token_urlsafe(48),
        cookie_signing_secret=secrets.token_urlsafe(48),
        cookie_encryption_secret=secrets.token_urlsafe(48),
        asset_signing_secret=secrets.token_urlsafe(48),
        nats_token=secrets.token_urlsafe(32),
    )


def write_initial_config(path: Path) -> None:
    """Create ``path`` (mode 0600) exclusively; ``ConfigError`` if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"refusing to overwrite existing config file {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot create config file {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render_initial_config())
    os.chmod(path, 0o600)
