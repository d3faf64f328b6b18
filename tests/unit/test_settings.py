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


def test_the_stack_owns_addresses_and_docker_jobs_get_the_container_side(tmp_path):
    """`labkit submit` from the host in docker mode used to send the job 127.0.0.1:9092 and the host's
    InfluxDB URL with no token file: the job runs inside the Flink container, where those are kafka:19092,
    http://influxdb:8086 and the secrets volume. The job spec must carry the container side."""
    from labkit import jobs, stack
    from labkit.settings import load

    s = load(mode="docker", home=tmp_path)
    st = stack.get(s)
    assert st.get_bootstrap_server() == "127.0.0.1:9092"  # the host side: producer, notebooks, queries
    side = st.job_side()
    assert (side.kafka, side.influx_url, side.token_file) == (
        "kafka:19092",
        "http://influxdb:8086",
        "/secrets/influx-write.token",
    )
    spec, params = jobs.pipeline_spec(s)
    assert params.bootstrap == "kafka:19092"
    assert any("'properties.bootstrap.servers' = 'kafka:19092'" in stmt for stmt in spec["ddl"])
    assert not any("127.0.0.1" in stmt for stmt in spec["ddl"] + spec["inserts"])
    assert spec["influx"]["url"] == "http://influxdb:8086"
    assert spec["influx"]["token_file"] == "/secrets/influx-write.token"

    # external mode: what the settings say, for both sides unless a job-side address is given
    ext = stack.get(load(mode="external", kafka_bootstrap="k1:9092,k2:9092", kafka_bootstrap_for_flink="k-int:9092"))
    assert ext.get_bootstrap_server() == "k1:9092,k2:9092" and ext.job_side().kafka == "k-int:9092"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LABKIT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "LABKIT_KAFKA_SASL_USERNAME"),
        ({"LABKIT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "LABKIT_KAFKA_SASL_USERNAME": "a"}, "PASSWORD"),
        (
            {
                "LABKIT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
                "LABKIT_KAFKA_SASL_USERNAME": "a",
                "LABKIT_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/pw",
            },
            "LABKIT_KAFKA_SASL_PASSWORD_FILE",
        ),
        (
            {"LABKIT_KAFKA_SECURITY_PROTOCOL": "SSL", "LABKIT_KAFKA_SSL_CA_FILE": "README.md"},
            "LABKIT_KAFKA_SSL_CA_FILE",
        ),
        ({"LABKIT_KAFKA_SECURITY_PROTOCOL": "TLS"}, "LABKIT_KAFKA_SECURITY_PROTOCOL"),
        ({"LABKIT_KAFKA_SASL_MECHANISM": "GSSAPI"}, "LABKIT_KAFKA_SASL_MECHANISM"),
        ({"LABKIT_KAFKA_REPLICATION_FACTOR": "0"}, "LABKIT_KAFKA_REPLICATION_FACTOR"),
    ],
)
def test_kafka_security_settings_that_cannot_work_are_named(monkeypatch, env, named):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ConfigError) as e:
        load()
    assert named in str(e.value), str(e.value)


def test_kraft_cluster_ids_never_start_with_a_dash():
    # One URL-safe base64 UUID in 64 starts with "-", so 4,000 draws would hold ~62 such ids if nothing redrew them.
    from labkit.stack.kafka import new_cluster_id

    ids = [new_cluster_id() for _ in range(4000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_namespace_scopes_every_name_labkit_makes_once():
    from labkit.settings import load

    s = load(namespace="a07")
    assert (s.topic, s.dlq_topic) == ("a07.clickstream_events", "a07.clickstream_dlq")
    assert s.scoped("lab03_scratch") == "a07.lab03_scratch"
    assert s.scoped(s.scoped("lab03_scratch")) == "a07.lab03_scratch"  # idempotent: callers may scope again
    assert s.pipeline_group() == "a07.labkit-a07.clickstream_events"
    assert (
        s.pipeline_group("lab09_capstone") == s.pipeline_group("a07.lab09_capstone") == "a07.labkit-a07.lab09_capstone"
    )
    assert s.dlq_topic_for("lab09_capstone") == "a07.lab09_capstone_dlq"
    plain = load()
    assert (plain.topic, plain.scoped("x"), plain.pipeline_group()) == (
        "clickstream_events",
        "x",
        "labkit-clickstream_events",
    )


@pytest.mark.parametrize("bad", ["A07", "7a", "a.b", "a b", "", "a" * 40])
def test_a_bad_namespace_names_the_setting(bad):
    from labkit.errors import ConfigError
    from labkit.settings import load

    with pytest.raises(ConfigError, match="LABKIT_NAMESPACE"):
        load(namespace=bad)


def test_a_missing_settings_file_is_named(monkeypatch, tmp_path):
    from labkit.errors import ConfigError
    from labkit.settings import load

    monkeypatch.setenv("LABKIT_ENV_FILE", str(tmp_path / "a01.env"))
    with pytest.raises(ConfigError, match="LABKIT_ENV_FILE"):
        load()
    (tmp_path / "a01.env").write_text("LABKIT_NAMESPACE=a01\nLABKIT_PARTITIONS=2\n")
    s = load()
    assert (s.namespace, s.topic, s.partitions) == ("a01", "a01.clickstream_events", 2)


def test_the_orders_topic_is_named_by_the_settings_and_follows_the_namespace():
    from labkit.settings import load

    assert load().orders_topic == "clickstream_orders"
    assert load(namespace="a07").orders_topic == "a07.clickstream_orders"
