"""``auth.registration`` and its deprecated alias ``auth.registration_open``."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatto.config import load_config
from chatto.initcmd import render_initial_config, write_initial_config
from tests.test_config import add_line, fails, set_value


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "chatto.toml"
    write_initial_config(path)
    return path


def test_new_files_carry_the_mode_not_the_alias() -> None:
    text = render_initial_config()
    assert 'registration = "open"' in text and "registration_open" not in text


@pytest.mark.parametrize("mode", ["open", "invite-only", "closed"])
def test_each_mode_loads(cfg: Path, mode: str) -> None:
    set_value(cfg, "auth.registration", f'"{mode}"')
    auth = load_config(cfg, environ={}).auth
    assert auth.registration == mode and auth.registration_open == (mode == "open")
    assert not auth.registration_alias_used


def test_an_unknown_mode_is_named(cfg: Path) -> None:
    set_value(cfg, "auth.registration", '"invite"')
    assert fails(cfg) == "config key 'auth.registration' must be open, invite-only or closed"


@pytest.mark.parametrize(("old", "mode"), [("true", "open"), ("false", "closed")])
def test_the_deprecated_alias_alone_decides(tmp_path: Path, old: str, mode: str) -> None:
    # An old file: the alias and no `registration` key.
    path = tmp_path / "old.toml"
    write_initial_config(path)
    text = path.read_text().replace('registration = "open"\n', f"registration_open = {old}\n")
    path.write_text(text)
    loaded = load_config(path, environ={}).auth
    assert loaded.registration == mode and loaded.registration_alias_used
    # The environment variable of the alias works too.
    write_initial_config(cfg := tmp_path / "new.toml")
    path.write_text(cfg.read_text().replace('registration = "open"\n', ""))
    env = {"CHATTO_AUTH_REGISTRATION_OPEN": old}
    assert load_config(path, environ=env).auth.registration == mode


def test_agreeing_keys_load_and_disagreeing_ones_fail(cfg: Path) -> None:
    add_line(cfg, "auth", "registration_open = false")
    set_value(cfg, "auth.registration", '"closed"')
    assert load_config(cfg, environ={}).auth.registration == "closed"
    set_value(cfg, "auth.registration", '"invite-only"')
    message = fails(cfg)
    assert "'auth.registration'" in message and "registration_open" in message
    # The environment counts as given: it overrides the file's mode.
    set_value(cfg, "auth.registration", '"closed"')
    assert fails(cfg, {"CHATTO_AUTH_REGISTRATION": "open"}) == message


def test_the_alias_is_warned_about_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from chatto.server import warn_about_config

    path = tmp_path / "old.toml"
    write_initial_config(path)
    path.write_text(
        path.read_text().replace('registration = "open"\n', "registration_open = false\n")
    )
    warn_about_config(load_config(path, environ={}))
    assert "auth.registration_open is deprecated: set auth.registration = 'closed'" in caplog.text
