"""``chatto init``: write a complete config file with fresh random secrets.

The file is rendered from the schema's defaults (``chatto.config_schema``), so
it always holds every key the loader knows; ``chatto.toml.example`` carries
the per-key documentation. The file is created exclusively with mode 0600:
an existing config (and the secrets in it) is never overwritten.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import attrs

from chatto.config_schema import Config, schema_fields
from chatto.crypto.master import MasterKeyError, new_master_key, write_key_file
from chatto.errors import ConfigError
from chatto.files import create_private

# Dotted key -> bytes of randomness for secrets.token_urlsafe.
SECRET_BYTES = {
    "core.secret_key": 48,
    "webserver.cookie_signing_secret": 48,
    "webserver.cookie_encryption_secret": 48,
    "webserver.asset_signing_secret": 48,
    "nats.embedded.token": 32,
}

HEADER = """\
# Chatto configuration, written by `chatto init`. Keep this file private:
# it holds the server's secrets, and changing core.secret_key invalidates
# every session. Each key is documented in chatto.toml.example; any key can
# be overridden from the environment as CHATTO_<SECTION>_<KEY>."""


def write_initial_config(path: Path) -> None:
    """Create ``path`` (mode 0600) exclusively; ``ConfigError`` if it exists.

    Also writes the master key file next to it (``<name>.master.key``, 0600)
    unless that file exists already: a master key is never overwritten.
    """
    key_file = f"{path.stem}.master.key"
    text = render_initial_config(master_key_file=key_file)
    try:
        create_private(path, text.encode("utf-8"))
    except FileExistsError:
        raise ConfigError(f"refusing to overwrite existing config file {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot write config file {path}: {exc.strerror}") from None
    key_path = path.parent / key_file
    if not key_path.exists():
        try:
            write_key_file(key_path, new_master_key())
        except MasterKeyError as exc:
            raise ConfigError(exc.message) from None


def render_initial_config(master_key_file: str | None = None) -> str:
    """The config text: every key at its default, secrets freshly generated."""
    values = {key: secrets.token_urlsafe(n) for key, n in SECRET_BYTES.items()}
    if master_key_file is not None:
        values["kms.master_key_file"] = master_key_file
    lines = [HEADER]
    _render_section(Config(), "", values, lines)
    return "\n".join(lines) + "\n"


def _render_section(section: Any, prefix: str, values: dict[str, str], lines: list[str]) -> None:
    """Append ``section``'s keys under its header, then its nested sections."""
    nested: list[tuple[str, Any]] = []
    if prefix:
        lines += ["", f"[{prefix.rstrip('.')}]"]
    for f in schema_fields(type(section)):
        value = getattr(section, f.name)
        if attrs.has(type(value)):
            nested.append((prefix + f.name + ".", value))
        else:
            value = values.get(prefix + f.name, value)
            lines.append(f"{f.name} = {_toml_value(value)}")
    for sub_prefix, sub in nested:
        _render_section(sub, sub_prefix, values, lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # JSON string escapes are valid TOML basic-string escapes; DEL is the
        # one character TOML forbids raw that JSON leaves alone.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML rendering for {type(value).__name__}")
