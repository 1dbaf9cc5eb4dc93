"""Configuration loading, environment overrides and validation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chatto.config import all_keys, env_name, load_config
from chatto.errors import ConfigError
from chatto.initcmd import write_initial_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "conf" / "chatto.toml"
    write_initial_config(path)
    return path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_init_output_loads_with_distinct_secrets(cfg: Path) -> None:
    config = load_config(cfg, environ={})
    secrets = [
        config.core.secret_key,
        config.webserver.cookie_signing_secret,
        config.webserver.cookie_encryption_secret,
        config.webserver.asset_signing_secret,
        config.nats.embedded.token,
    ]
    assert len(set(secrets)) == 5 and all(len(s) >= 32 for s in secrets)
    assert config.nats.embedded.enabled
    assert config.data_dir == (cfg.parent / "data").resolve()
    assert config.nats_store_dir == config.data_dir / "nats"


def test_environment_overrides_win(cfg: Path) -> None:
    env = {
        "CHATTO_WEBSERVER_PORT": "8080",
        "CHATTO_NATS_EMBEDDED_ENABLED": "no",
        "CHATTO_NATS_URL": "nats://a:4222,nats://b:4222",
        "CHATTO_OWNERS_EMAILS": "a@example.com, b@example.com",
        "CHATTO_ACTORS_IDLE_SECONDS": "1.5",
    }
    config = load_config(cfg, environ=env)
    assert config.webserver.port == 8080
    assert config.nats.embedded.enabled is False
    assert config.owners.emails == ["a@example.com", "b@example.com"]
    assert config.actors.idle_seconds == 1.5


def test_bad_environment_value_names_the_variable(cfg: Path) -> None:
    with pytest.raises(ConfigError, match="CHATTO_WEBSERVER_PORT must be an integer"):
        load_config(cfg, environ={"CHATTO_WEBSERVER_PORT": "eighty"})
    with pytest.raises(ConfigError, match="CHATTO_SMTP_ENABLED must be a boolean"):
        load_config(cfg, environ={"CHATTO_SMTP_ENABLED": "maybe"})


def test_unknown_keys_and_sections_are_named(cfg: Path) -> None:
    edit(cfg, "port = 4000", "prot = 4000")
    with pytest.raises(ConfigError, match=r"'webserver.prot' \(did you mean 'webserver.port'"):
        load_config(cfg, environ={})
    edit(cfg, "prot = 4000", "port = 4000\n[nonsense]\nx = 1")
    with pytest.raises(ConfigError, match="unknown config key 'nonsense'"):
        load_config(cfg, environ={})


def test_wrong_types_are_named(cfg: Path) -> None:
    edit(cfg, "port = 4000", 'port = "4000"')
    with pytest.raises(ConfigError, match="'webserver.port' must be an integer"):
        load_config(cfg, environ={})
    edit(cfg, 'port = "4000"', "port = true")
    with pytest.raises(ConfigError, match="'webserver.port' must be an integer"):
        load_config(cfg, environ={})


def test_missing_and_short_secrets_never_echo_the_value(cfg: Path) -> None:
    config = load_config(cfg, environ={})
    with pytest.raises(ConfigError, match="missing required secret 'core.secret_key'") as info:
        load_config(cfg, environ={"CHATTO_CORE_SECRET_KEY": ""})
    assert config.webserver.cookie_signing_secret not in info.value.message
    short = "tooShortSecretValue"
    with pytest.raises(ConfigError, match="too short") as info:
        load_config(cfg, environ={"CHATTO_WEBSERVER_ASSET_SIGNING_SECRET": short})
    assert short not in info.value.message
    with pytest.raises(ConfigError) as info:
        load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_TOKEN": "abc"})
    assert "abc" not in info.value.message.replace("at least", "")


def test_malformed_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[core\n")
    with pytest.raises(ConfigError, match="malformed TOML in .*bad.toml"):
        load_config(bad, environ={})
    with pytest.raises(ConfigError, match="chatto init"):
        load_config(tmp_path / "none.toml", environ={})


def test_nats_mode_rules(cfg: Path) -> None:
    with pytest.raises(ConfigError, match="nats.url"):
        load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_ENABLED": "false"})
    with pytest.raises(ConfigError, match="nats.embedded.enabled"):
        load_config(cfg, environ={"CHATTO_NATS_URL": "nats://x:4222"})
    with pytest.raises(ConfigError, match="loopback"):
        load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_HOST": "0.0.0.0"})
    ok = load_config(cfg, environ={"CHATTO_NATS_EMBEDDED_HOST": "::1"})
    assert ok.nats.embedded.host == "::1"


def test_ranges_and_enums(cfg: Path) -> None:
    for var, value, key in (
        ("CHATTO_WEBSERVER_PORT", "70000", "webserver.port"),
        ("CHATTO_ACTORS_MAILBOX_SIZE", "0", "actors.mailbox_size"),
        ("CHATTO_AUTH_BCRYPT_COST", "3", "auth.bcrypt_cost"),
        ("CHATTO_LOGGING_LEVEL", "loud", "logging.level"),
        ("CHATTO_WEBSERVER_URL", "ftp://x", "webserver.url"),
        ("CHATTO_OWNERS_EMAILS", "not-an-email", "owners.emails"),
    ):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(cfg, environ={var: value})


def test_redacted_hides_every_secret(cfg: Path) -> None:
    config = load_config(cfg, environ={})
    text = repr(config.redacted())
    assert config.core.secret_key not in text
    assert config.nats.embedded.token not in text
    assert config.redacted()["core"]["secret_key"] == "<redacted>"
    assert config.redacted()["nats"]["password"] == ""
    assert config.redacted()["webserver"]["port"] == 4000


def test_example_documents_exactly_the_schema() -> None:
    doc = tomllib.loads((ROOT / "chatto.toml.example").read_text())

    def flatten(d: dict[str, object], prefix: str = "") -> set[str]:
        out: set[str] = set()
        for k, v in d.items():
            out |= flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {prefix + k}
        return out

    assert flatten(doc) == set(all_keys())
    assert env_name("nats.embedded.enabled") == "CHATTO_NATS_EMBEDDED_ENABLED"
