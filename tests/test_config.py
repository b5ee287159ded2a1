"""Settings: YAML + environment, clear errors naming file and key, secrets masked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from soclite.config import load_settings, masked_dump
from soclite.errors import ConfigError


def test_defaults_are_the_embedded_store_and_vietnamese(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCLITE_CONFIG", raising=False)
    settings = load_settings()
    assert settings.store.kind == "sqlite"
    assert settings.language == "vi"
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.store.verify_certs is True


def test_yaml_file_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "soclite.yml"
    config.write_text("server:\n  http_port: 9001\nstore:\n  kind: opensearch\n  opensearch_url: https://a:9200,https://b:9200\n")
    monkeypatch.setenv("SOCLITE_SERVER__HTTP_PORT", "9002")
    settings = load_settings(config)
    assert settings.server.http_port == 9002
    assert settings.store.kind == "opensearch"
    assert settings.store.opensearch_url == ["https://a:9200", "https://b:9200"]


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        ("https://os1:9200", ["https://os1:9200"]),
        ("https://os1:9200, https://os2:9200", ["https://os1:9200", "https://os2:9200"]),
        ('["https://os1:9200", "https://os2:9200"]', ["https://os1:9200", "https://os2:9200"]),
    ],
)
def test_opensearch_urls_from_the_environment(value: str, urls: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # as the README says: one URL or a comma-separated list (pydantic-settings used to demand JSON here
    # and refused a plain URL with "error parsing value for field store")
    monkeypatch.setenv("SOCLITE_STORE__OPENSEARCH_URL", value)
    assert load_settings().store.opensearch_url == urls


def test_invalid_value_names_file_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("server:\n  http_port: seventy\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config)
    message = str(info.value)
    assert str(config) in message
    assert "server.http_port" in message
    assert "integer" in message


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.yml"
    config.write_text("stroe:\n  kind: sqlite\n")
    with pytest.raises(ConfigError, match="stroe"):
        load_settings(config)


def test_broken_yaml_names_the_line(tmp_path: Path) -> None:
    config = tmp_path / "broken.yml"
    config.write_text("server:\n  http_port: 1\n bad: [\n")
    with pytest.raises(ConfigError, match=r"broken\.yml:\d+"):
        load_settings(config)


def test_environment_error_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLITE_STORE__KIND", "mongodb")
    with pytest.raises(ConfigError, match="SOCLITE_STORE__KIND"):
        load_settings()


def test_default_secret_refused_in_production() -> None:
    settings = load_settings(environment="production")
    with pytest.raises(ConfigError, match=r"auth\.secret_key"):
        settings.check_secrets()
    load_settings(environment="development").check_secrets()


@pytest.mark.parametrize("key", ["short-key", "a" * 64, "abcabcabcabcabcabcabcabcabcabcabcabc", "0123456789" * 3])
def test_weak_secret_key_refused_in_production(key: str) -> None:
    """Issue 13 item 15: a short or low-entropy key signs cookies anyone can forge; refused, naming the key."""
    settings = load_settings(environment="production", auth={"secret_key": key})
    with pytest.raises(ConfigError, match=r"auth\.secret_key.*too weak") as caught:
        settings.check_secrets()
    assert key not in str(caught.value)  # never echo the secret
    load_settings(environment="development", auth={"secret_key": key}).check_secrets()


def test_random_secret_key_accepted_in_production() -> None:
    import secrets

    for key in (secrets.token_hex(16), secrets.token_urlsafe(48), "wheel-test-" + secrets.token_hex(16)):
        load_settings(environment="production", auth={"secret_key": key}).check_secrets()


def test_trusted_proxies_must_be_addresses() -> None:
    assert load_settings(auth={"trusted_proxies": ["10.0.0.1", "192.168.0.0/24"]}).auth.trusted_proxies
    with pytest.raises(ConfigError, match=r"auth\.trusted_proxies"):
        load_settings(auth={"trusted_proxies": ["proxy.example"]})
    with pytest.raises(ConfigError, match=r"token_max_days"):
        load_settings(auth={"token_days": 400, "token_max_days": 365})


def test_masked_dump_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCLITE_AUTH__SECRET_KEY", "very-secret-value")
    dumped = masked_dump(load_settings())
    assert "very-secret-value" not in json.dumps(dumped)
    assert dumped["auth"]["secret_key"] == "********"


def test_cli_config_show_and_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("journal:\n  warn_ratio: 7\n")
    result = subprocess.run(
        [sys.executable, "-m", "soclite", "config", "show", "--config", str(bad)], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "journal.warn_ratio" in result.stderr and str(bad) in result.stderr
    good = tmp_path / "good.yml"
    good.write_text("auth:\n  secret_key: s3cr3t-of-this-site\n")
    result = subprocess.run(
        [sys.executable, "-m", "soclite", "config", "show", "--config", str(good)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["auth"]["secret_key"] == "********"
    assert "s3cr3t-of-this-site" not in result.stdout


def test_opensearch_credentials_over_plain_http_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "os.yml"
    config.write_text(
        "store:\n  kind: opensearch\n  opensearch_url: http://os.example:9200\n"
        "  opensearch_username: soclite\n  opensearch_password: pw\n"
    )
    with pytest.raises(ConfigError, match="clear text") as info:
        load_settings(config)
    assert "store" in str(info.value)
    config.write_text(config.read_text() + "  allow_plaintext_auth: true\n")
    assert load_settings(config).store.allow_plaintext_auth is True
    # https, or no credentials at all (a test server on loopback), is fine.
    config.write_text("store:\n  kind: opensearch\n  opensearch_url: http://127.0.0.1:9200\n")
    load_settings(config)
