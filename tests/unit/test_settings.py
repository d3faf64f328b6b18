import os
import stat

import pytest

from labkit import credentials
from labkit.errors import ConfigError
from labkit.settings import load


def test_defaults_bind_loopback_and_derive_endpoints(monkeypatch):
    for k in list(os.environ):
        if k.startswith("LABKIT_"):
            monkeypatch.delenv(k)
    s = load()
    assert s.bind_host == "127.0.0.1"
    assert s.kafka == "127.0.0.1:9092"
    assert s.flink == "http://127.0.0.1:8081"
    assert s.influx == "http://127.0.0.1:8086"


def test_environment_overrides_ports_and_endpoints(monkeypatch):
    monkeypatch.setenv("LABKIT_KAFKA_PORT", "19092")
    monkeypatch.setenv("LABKIT_INFLUX_URL", "http://influx.example:8086/")
    s = load()
    assert s.kafka == "127.0.0.1:19092"
    assert s.influx == "http://influx.example:8086"


def test_dotenv_file_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LABKIT_INFLUX_BUCKET=from-dotenv\n")
    assert load().influx_bucket == "from-dotenv"


def test_bad_port_names_the_setting(monkeypatch):
    monkeypatch.setenv("LABKIT_KAFKA_PORT", "not-a-port")
    with pytest.raises(ConfigError) as e:
        load()
    assert "LABKIT_KAFKA_PORT" in str(e.value)
    assert e.value.hint and "docs/configuration.md" in e.value.hint


def test_port_out_of_range(monkeypatch):
    monkeypatch.setenv("LABKIT_FLINK_REST_PORT", "70000")
    with pytest.raises(ConfigError, match="LABKIT_FLINK_REST_PORT"):
        load()


def test_two_services_on_one_port_is_refused(monkeypatch):
    monkeypatch.setenv("LABKIT_INFLUX_PORT", "9092")
    with pytest.raises(ConfigError, match="LABKIT_INFLUX_PORT and LABKIT_KAFKA_PORT|LABKIT_KAFKA_PORT"):
        load()


def test_credentials_are_random_private_and_hidden(tmp_path):
    a = credentials.load_or_create(tmp_path / "a")
    b = credentials.load_or_create(tmp_path / "b")
    assert a.influx_admin_token != b.influx_admin_token
    assert len(a.influx_password) >= 16
    mode = stat.S_IMODE(os.stat(credentials.path(tmp_path / "a")).st_mode)
    assert mode == 0o600
    assert a.influx_admin_token not in repr(a)
    # stable across loads
    assert credentials.load_or_create(tmp_path / "a").influx_admin_token == a.influx_admin_token
