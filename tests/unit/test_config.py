"""Configuration loading: defaults, TOML file, environment overrides, errors naming the key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from beaconwatch.config import AllowRule, Config, ConfigError, load_config, with_overrides

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "beaconwatch.toml"


def test_defaults_without_file_or_env() -> None:
    config = load_config(None, env={})
    assert config == Config()
    assert config.kafka.input_topics == ["flows"]
    assert config.scoring.threshold == 0.8
    assert config.metrics.port == 9108


def test_shipped_config_loads_and_equals_the_defaults() -> None:
    assert load_config(SHIPPED, env={}) == Config()


def test_shipped_config_names_every_key() -> None:
    # Optional keys (SASL) are documented as comments; every other key must be spelled out.
    shipped = tomllib.loads(SHIPPED.read_text(encoding="utf-8"))
    text = SHIPPED.read_text(encoding="utf-8")
    for section, model in Config.model_fields.items():
        if section == "allowlist":  # a list of rules, empty by default: shown as an example
            assert "# [[allowlist]]" in text
            for key in AllowRule.model_fields:
                assert f"# {key} = " in text, f"allowlist.{key}"
            continue
        assert model.annotation is not None
        for key in model.annotation.model_fields:
            assert key in shipped[section] or f"# {key} = " in text, f"{section}.{key}"


def test_file_values_are_applied(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[kafka]\ninput_topics = ["a", "b"]\n[scoring]\nthreshold = 0.65\n[state]\nwindow_s = 60\n'
    )
    config = load_config(path, env={})
    assert config.kafka.input_topics == ["a", "b"]
    assert config.scoring.threshold == 0.65
    assert config.state.window_s == 60.0
    assert config.alerting == Config().alerting


def test_env_overrides_file_and_parses_toml_literals(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[kafka]\nbootstrap_servers = "file:9092"\n')
    env = {
        "BEACONWATCH_KAFKA__BOOTSTRAP_SERVERS": "kafka:9092",
        "BEACONWATCH_SCORING__THRESHOLD": "0.7",
        "BEACONWATCH_KAFKA__INPUT_TOPICS": '["x", "y"]',
        "BEACONWATCH_KAFKA__CREATE_TOPICS": "false",
        "UNRELATED": "ignored",
    }
    config = load_config(path, env=env)
    assert config.kafka.bootstrap_servers == "kafka:9092"
    assert config.scoring.threshold == 0.7
    assert config.kafka.input_topics == ["x", "y"]
    assert config.kafka.create_topics is False


def test_unknown_key_in_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[scoring]\ntreshold = 0.5\n")
    with pytest.raises(ConfigError, match=r"scoring\.treshold: unknown key"):
        load_config(path, env={})


def test_unknown_key_in_env_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"kafka\.bootstrap_server"):
        load_config(None, env={"BEACONWATCH_KAFKA__BOOTSTRAP_SERVER": "x:1"})


def test_malformed_env_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="BEACONWATCH_THRESHOLD"):
        load_config(None, env={"BEACONWATCH_THRESHOLD": "0.5"})


def test_out_of_range_value_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[scoring]\nthreshold = 1.5\n")
    with pytest.raises(ConfigError, match=r"scoring\.threshold"):
        load_config(path, env={})


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[kafka\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, env={})


def test_with_overrides_validates() -> None:
    config = with_overrides(Config(), metrics={"port": 0})
    assert config.metrics.port == 0
    with pytest.raises(ConfigError, match=r"metrics\.port"):
        with_overrides(Config(), metrics={"port": 70_000})


def test_readme_lists_every_config_key() -> None:
    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("| section | keys |") :].split("\n\n", 1)[0]
    rows = {line.split("|")[1].strip().strip("`[]"): line for line in table.splitlines()[2:]}
    for name, field in Config.model_fields.items():
        section = field.annotation
        model = section if isinstance(section, type) and issubclass(section, BaseModel) else None
        keys = (model or AllowRule).model_fields
        assert name in rows, f"README config table lacks [{name}]"
        for key in keys:
            assert f"`{key}`" in rows[name], f"README config table lacks {name}.{key}"


SASL = {
    "BEACONWATCH_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "BEACONWATCH_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "BEACONWATCH_KAFKA__SASL_USERNAME": "beaconwatch",
}


def test_a_password_is_text_whatever_it_looks_like(tmp_path: Path) -> None:
    # Seen: a numeric password from the environment was rejected, and echoed in the error.
    for raw in ("12345", "0x1F", "true", "[1]", '"quoted"', "1e3"):
        config = load_config(env={**SASL, "BEACONWATCH_KAFKA__SASL_PASSWORD": raw})
        assert config.kafka.sasl_password is not None
        assert config.kafka.sasl_password.get_secret_value() == raw
    cfg = tmp_path / "c.toml"
    cfg.write_text("[kafka]\nsasl_password = 12345\n")
    password = load_config(cfg, env={}).kafka.sasl_password
    assert password is not None and password.get_secret_value() == "12345"


def test_config_errors_and_reprs_never_show_the_password(tmp_path: Path) -> None:
    # Seen: a typo in any Kafka setting printed the whole Kafka config, password included.
    secret = "hunter2-Sw0rdfish"
    env = {**SASL, "BEACONWATCH_KAFKA__SASL_PASSWORD": secret}
    cfg = tmp_path / "c.toml"
    for text in (
        "[kafka]\ngroup_idd = 'x'\n",  # a typo
        "[kafka]\nheartbeat_interval_ms = 60000\nsession_timeout_ms = 10000\n",  # a cross-key check
        "[kafka]\nsasl_password = ['not', 'text']\n",  # the password itself is wrong
    ):
        cfg.write_text(text)
        with pytest.raises(ConfigError) as err:
            load_config(cfg, env=env if "sasl_password" not in text else {})
        assert secret not in str(err.value) and "not', 'text" not in str(err.value)
        assert "  kafka" in str(err.value)  # still names the section or key
    config = load_config(env=env)
    assert secret not in repr(config) and secret not in str(config.model_dump())
    from beaconwatch.runtime.kafka_options import client_options, redacted

    options = client_options(config.kafka)
    assert options["sasl_plain_password"] == secret  # the client gets the text itself
    assert secret not in repr(redacted(options))
