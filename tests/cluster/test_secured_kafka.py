"""External mode against a secured Kafka (SASL/SCRAM-SHA-512 over TLS): the producer (both engines), the
admin and consumer clients, and the Flink job's source and dead-letter sink all authenticate, and the
pipeline's accounts are exact. A wrong password, an untrusted CA or a wrong address is named as the setting
to fix, never as a timeout."""

import uuid

import pytest

from labkit import jobs
from labkit import stack as stack_mod
from labkit.errors import LabkitError
from labkit.kafka_clients import diagnose
from labkit.produce import produce
from labkit.verify import verify

pytestmark = pytest.mark.stack


def test_the_pipeline_runs_over_sasl_scram_and_tls_with_exact_accounts(secured_kafka):
    topic = f"sec_{uuid.uuid4().hex[:8]}"
    s = secured_kafka.settings(topic=topic, dlq_topic=f"{topic}_dlq")
    st = stack_mod.get(s)
    status = st.up(timeout=60)  # checks all three clusters and creates the topics over SASL_SSL
    assert status.all_running, status
    job = jobs.submit_pipeline(s, name=f"secured-{topic}", wait=False)
    try:
        job.wait_running()
        first = produce(10_000, seed=1, sim_rate=200, late_fraction=0.01, malformed_fraction=0.01,
                        engine="confluent", settings=s)  # fmt: skip
        second = produce(10_000, seed=2, sim_rate=200, late_fraction=0.01, malformed_fraction=0.01,
                         close_windows=True, settings=s)  # fmt: skip
        acc = verify(first.ledger.merge(second.ledger), settings=s, wait_s=120)
        assert acc.exact, f"{acc}\n{acc.mismatches}"
        # the dead-letter topic was written (by the job) and read (by verify) over SASL_SSL
        assert sum(acc.dlq_found.values()) > 0 and acc.late_counted == acc.late_expected > 0, acc
    finally:
        job.cancel()


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("password", "LABKIT_KAFKA_SASL_PASSWORD"),
        ("user", "LABKIT_KAFKA_SASL_USERNAME"),
        ("ca", "LABKIT_KAFKA_SSL_CA_FILE"),
        ("plaintext", "LABKIT_KAFKA_SECURITY_PROTOCOL"),
        ("address", "LABKIT_KAFKA_BOOTSTRAP"),
    ],
)
def test_a_wrong_security_setting_is_named(secured_kafka, tmp_path, change, named):
    if change == "password":
        wrong = tmp_path / "pw"
        wrong.write_text("not-the-password")
        s = secured_kafka.settings(kafka_sasl_password_file=wrong)
    elif change == "user":
        s = secured_kafka.settings(kafka_sasl_username="nobody")
    elif change == "ca":
        s = secured_kafka.settings(kafka_ssl_ca_file=secured_kafka.other_ca)
    elif change == "plaintext":
        s = secured_kafka.settings(kafka_security_protocol="PLAINTEXT")
    else:
        s = secured_kafka.settings(kafka_bootstrap="127.0.0.1:1")
    err = diagnose(s)
    assert named in str(err), str(err)
    # and what a user meets first: the producer and `labkit status` say the same
    with pytest.raises(LabkitError) as e:
        produce(10, settings=s)
    assert named in str(e.value), str(e.value)
    kafka = next(x for x in stack_mod.get(s).status().services if x.name == "kafka")
    assert kafka.state == "unreachable" and named in kafka.detail, kafka
