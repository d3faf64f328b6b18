"""A Kafka broker secured like a production cluster, made by the tests: SASL/SCRAM-SHA-512 over TLS.

The certificates come from a CA made here with openssl (not from labkit), the SCRAM user is written by
Kafka's own storage tool, and the broker is the same Kafka release the lab pins. Clients reach it only on
its SASL_SSL listener; the broker talks to itself on a plaintext listener of its own."""

from __future__ import annotations

import base64
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.stack.kafka import LOG4J2
from labkit.stack.provision import kafka as kafka_dist
from labkit.stack.provision.tools import require_java

USER, PASSWORD = "attendee-01", "s3cret-" + uuid.uuid4().hex[:8]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
             "-days", "2", "-subj", f"/CN={name}", cwd=d)  # fmt: skip
    return d / f"{name}.pem", d / f"{name}.key"


def make_broker_keystore(d: Path, ca: Path, ca_key: Path) -> Path:
    """Key (PKCS#8, as Kafka's PEM keystore wants it) and certificate for 127.0.0.1, signed by `ca`."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", "broker.crt", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    ks = d / "broker-keystore.pem"
    ks.write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())
    return ks


@dataclass
class SecuredKafka:
    bootstrap: str
    ca: Path
    other_ca: Path  # a CA that did not sign the broker's certificate
    password_file: Path
    proc: subprocess.Popen
    log: Path

    def settings(self, **overrides):
        """External-mode settings for this broker; Flink and InfluxDB are the local stack's."""
        from labkit import stack as stack_mod
        from labkit.settings import get, load

        local = get()
        st = stack_mod.get(local)
        base = dict(
            mode="external",
            home=local.home,
            kafka_bootstrap=self.bootstrap,
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username=USER,
            kafka_sasl_password_file=self.password_file,
            kafka_ssl_ca_file=self.ca,
            flink_rest_url=local.flink,
            flink_python_executable=sys.executable,  # this "cluster's" TaskManager runs on this machine
            influx_url=local.influx,
            influx_token=st.influx_token("admin"),
            influx_write_token=st.influx_token("write"),
            influx_read_token=st.influx_token("read"),
            flink_influx_token_file=st.job_side().token_file,
        )
        return load(**{**base, **overrides})


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory, stack) -> SecuredKafka:
    d = tmp_path_factory.mktemp("secured-kafka")
    ca, ca_key = make_ca(d, "lab-ca")
    other_ca, _ = make_ca(d, "other-ca")
    keystore = make_broker_keystore(d, ca, ca_key)
    client_port, internal_port, controller_port = _free_port(), _free_port(), _free_port()
    props = d / "server.properties"
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}",
                f"listeners=SASL_SSL://127.0.0.1:{client_port},INTERNAL://127.0.0.1:{internal_port},"
                f"CONTROLLER://127.0.0.1:{controller_port}",
                f"advertised.listeners=SASL_SSL://127.0.0.1:{client_port},INTERNAL://127.0.0.1:{internal_port}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=INTERNAL",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
                "sasl.enabled.mechanisms=SCRAM-SHA-512",
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type=PEM",
                f"ssl.keystore.location={keystore}",
                f"log.dirs={d / 'data'}",
                "offsets.topic.replication.factor=1",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "share.coordinator.state.topic.replication.factor=1",
                "share.coordinator.state.topic.min.isr=1",
                "auto.create.topics.enable=false",
                "group.initial.rebalance.delay.ms=0",
            ]
        )
        + "\n"
    )
    (d / "log4j2.properties").write_text(LOG4J2)
    java = [require_java(), "-Xms128m", "-Xmx512m", f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
            "-cp", str(kafka_dist.jars_dir() / "*")]  # fmt: skip
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    subprocess.run(
        [*java, "kafka.tools.StorageTool", "format", "--standalone", "-t", cluster_id, "-c", str(props),
         "--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"],
        check=True, capture_output=True,
    )  # fmt: skip
    pw = d / "kafka-password"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    log = d / "kafka.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while "Kafka Server started" not in log.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the secured broker did not start:\n" + log.read_text()[-3000:])
        time.sleep(0.5)
    yield SecuredKafka(f"127.0.0.1:{client_port}", ca, other_ca, pw, proc, log)
    proc.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(30)
    proc.kill()
