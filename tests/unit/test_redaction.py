"""Secrets never reach a printed DDL: notebook 10's `show_ddl()` and notebook 03's `show_source_ddl()` hide the
SASL password and the inline CA of a secured cluster, while the DDL the jobs run keeps them; on the local
(plaintext) stack the shown DDL is the real one."""

from __future__ import annotations

import uuid

import pytest

from labkit.errors import ConfigError
from labkit.jobs.patterns import PatternStreams
from labkit.jobs.silent_partition import SilentPartitionLab
from labkit.kafka_clients import REDACTED, redact_secrets
from labkit.settings import load

PEM_BODY = "MIIBszCCAVmgAwIBAgIUQ" + "x" * 40


def _secured(tmp_path):
    marker = uuid.uuid4().hex
    password = f"p\"q'r\\s{marker}"  # quotes and a backslash: JAAS and SQL both escape them
    ca = tmp_path / "ca.pem"
    ca.write_text(f"-----BEGIN CERTIFICATE-----\n{PEM_BODY}\n{marker[:8]}==\n-----END CERTIFICATE-----\n")
    s = load(
        mode="external",
        kafka_bootstrap="k1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="alice",
        kafka_sasl_password=password,
        kafka_ssl_ca_file=ca,
    )
    return s, marker, password, ca


def _lab(s) -> SilentPartitionLab:
    """The lab without its set-up (which cancels earlier labs' jobs and creates its topic): only its DDL is used."""
    lab = object.__new__(SilentPartitionLab)
    lab.settings, lab.run_id, lab.topic = s, "abc123", "silent_abc123"
    return lab


def _ddls(s):
    streams = PatternStreams("lab10_clicks", "lab10_orders", s)
    lab = _lab(s)
    return [
        (streams.ddl()[0], streams.show_ddl()),
        (streams.ddl()[1], streams.show_ddl("orders")),
        (lab.source_ddl(), lab.show_source_ddl()),
    ]


def test_shown_ddl_hides_the_password_and_the_ca_the_real_one_keeps_them(clean):
    s, marker, password, ca = _secured(clean)
    for real, shown in _ddls(s):
        assert marker in real and PEM_BODY in real  # what the jobs run: the secrets, as before
        assert marker not in shown and PEM_BODY not in shown
        assert "password" in real and 'username="alice" password="***"' in shown  # still says what is set
        assert f"'properties.ssl.truststore.certificates' = '{REDACTED} (1 PEM block)'" in shown
        assert "'properties.security.protocol' = 'SASL_SSL'" in shown
        assert "ScramLoginModule required" in shown
        # and nothing else changed: the real DDL with those two values replaced is the shown one
        jaas = password.replace("\\", "\\\\").replace('"', '\\"').replace("'", "''")  # JAAS, then SQL escapes
        expected = real.replace(f'password="{jaas}"', f'password="{REDACTED}"')
        expected = expected.replace(ca.read_text().strip(), f"{REDACTED} (1 PEM block)")
        assert shown == expected


def test_plaintext_ddl_is_shown_as_it_is(clean):
    local = PatternStreams("lab10_clicks", "lab10_orders", load())  # this machine's stack
    assert [local.show_ddl(), local.show_ddl("orders")] == local.ddl()
    for real, shown in _ddls(load(mode="external", kafka_bootstrap="k1:9092")):  # a cluster without security
        assert "properties.security.protocol" not in real
        assert shown == real == redact_secrets(real)


def test_show_ddl_names_its_tables(clean):
    with pytest.raises(ConfigError, match="no table"):
        PatternStreams("a", "b", load()).show_ddl("sessions")


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('x required username="u" password="a\\"b";', 'x required username="u" password="***";'),
        ("x required username='u' password='a\\'b';", "x required username='u' password='***';"),
        ("'k' = 'x username=''u'' password=''a b'';'", "'k' = 'x username=''u'' password=''***'';'"),
        ("'properties.ssl.keystore.password' = 'it''s'", "'properties.ssl.keystore.password' = '***'"),
        ("'properties.ssl.key.password' = 's'", "'properties.ssl.key.password' = '***'"),
        ("{'sasl.password': 'pw', 'sasl.username': 'u'}", "{'sasl.password': '***', 'sasl.username': 'u'}"),
        (
            "'properties.ssl.keystore.key' = '-----BEGIN PRIVATE KEY-----\nAAA\n-----END PRIVATE KEY-----'",
            f"'properties.ssl.keystore.key' = '{REDACTED} (1 PEM block)'",
        ),
        (
            "ca:\n-----BEGIN CERTIFICATE-----\nAAA\nBBB\n-----END CERTIFICATE-----\nend",
            "ca:\n-----BEGIN CERTIFICATE----- *** -----END CERTIFICATE-----\nend",
        ),
        ("'properties.bootstrap.servers' = 'k1:9093'", "'properties.bootstrap.servers' = 'k1:9093'"),
    ],
)
def test_redact_secrets(text, shown):
    assert redact_secrets(text) == shown


def test_a_ddl_copied_from_the_printed_one_is_refused_before_it_runs(clean):
    s, *_ = _secured(clean)
    lab = _lab(s)
    with pytest.raises(ConfigError, match="secrets hidden"):
        lab.run(lab.show_source_ddl())
