"""Kafka clusters secured like production ones, made by the tests: SASL/SCRAM-SHA-512 over TLS.

The certificates come from a CA made here with openssl (not from labkit), the SCRAM user is written by
Kafka's own storage tool, and the brokers are the Kafka release the lab pins. Clients reach them only on
their SASL_SSL listeners; brokers talk to each other on a plaintext listener of their own.

- `secured_kafka`: one broker on loopback.
- `kafka_cluster`: three KRaft brokers (each also a controller), each on a host of its own: a network
  namespace with its own address on a bridge this test makes (10.231.0.0/24), reachable from this machine,
  where the Flink and InfluxDB of the local stack run. Torn down afterwards.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from labkit.stack.kafka import LOG4J2
from labkit.stack.provision import kafka as kafka_dist
from labkit.stack.provision.tools import require_java

USER, PASSWORD = "attendee-01", "s3cret-" + uuid.uuid4().hex[:8]
SUBNET, BRIDGE = "10.231.0", "lkbr0"


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


def make_broker_keystore(d: Path, ca: Path, ca_key: Path, ips: list[str]) -> Path:
    """Key (PKCS#8, as Kafka's PEM keystore wants it) and a certificate for `ips`, signed by `ca`."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
             "-subj", f"/CN={ips[0]}", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=" + ",".join(f"IP:{ip}" for ip in ips) + ",DNS:localhost\n")
    _openssl("x509", "-req", "-in", "broker.csr", "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", "broker.crt", "-days", "2", "-extfile", "san.ext", cwd=d)  # fmt: skip
    ks = d / "broker-keystore.pem"
    ks.write_text((d / "broker.key").read_text() + (d / "broker.crt").read_text())
    return ks


def _java(d: Path) -> list[str]:
    (d / "log4j2.properties").write_text(LOG4J2)
    return [require_java(), "-Xms128m", "-Xmx400m", f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
            "-cp", str(kafka_dist.jars_dir() / "*")]  # fmt: skip


@dataclass
class Broker:
    node_id: int
    host: str
    client_port: int
    internal_port: int
    controller_port: int
    dir: Path
    netns: str | None = None
    proc: subprocess.Popen | None = None
    starts: int = 1  # "Kafka Server started" lines to wait for

    @property
    def address(self) -> str:
        return f"{self.host}:{self.client_port}"

    @property
    def log(self) -> Path:
        return self.dir / "kafka.log"

    def write_properties(self, keystore: Path, voters: str, replicas: int) -> Path:
        h = self.host
        props = self.dir / "server.properties"
        props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node_id}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=SASL_SSL://{h}:{self.client_port},INTERNAL://{h}:{self.internal_port},"
                    f"CONTROLLER://{h}:{self.controller_port}",
                    f"advertised.listeners=SASL_SSL://{h}:{self.client_port},INTERNAL://{h}:{self.internal_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=INTERNAL",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,SASL_SSL:SASL_SSL",
                    "sasl.enabled.mechanisms=SCRAM-SHA-512",
                    "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config="
                    "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                    "ssl.keystore.type=PEM",
                    f"ssl.keystore.location={keystore}",
                    f"log.dirs={self.dir / 'data'}",
                    f"offsets.topic.replication.factor={replicas}",
                    f"transaction.state.log.replication.factor={replicas}",
                    f"transaction.state.log.min.isr={min(2, replicas)}",
                    f"share.coordinator.state.topic.replication.factor={replicas}",
                    f"share.coordinator.state.topic.min.isr={min(2, replicas)}",
                    f"min.insync.replicas={min(2, replicas)}",  # acks=all survives one broker down, loses nothing
                    "auto.create.topics.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                ]
            )
            + "\n"
        )
        return props

    def format(self, cluster_id: str, standalone: bool) -> None:
        subprocess.run(
            [*_java(self.dir), "kafka.tools.StorageTool", "format", *(["--standalone"] if standalone else []),
             "-t", cluster_id, "-c", str(self.dir / "server.properties"),
             "--add-scram", f"SCRAM-SHA-512=[name={USER},password={PASSWORD}]"],
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                [*prefix, *_java(self.dir), "kafka.Kafka", str(self.dir / "server.properties")],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_started(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while self.log.read_text().count("Kafka Server started") < self.starts:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"broker {self.node_id} did not start:\n" + self.log.read_text()[-3000:])
            time.sleep(0.5)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown (no leadership handed over, no log flushed)."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def restart(self) -> None:
        self.starts += 1
        self.start()
        self.wait_started()


@dataclass
class SecuredKafka:
    brokers: list[Broker]
    ca: Path
    other_ca: Path  # a CA that did not sign the brokers' certificates
    password_file: Path

    @property
    def bootstrap(self) -> str:
        return ",".join(b.address for b in self.brokers)

    def settings(self, **overrides):
        """External-mode settings for this Kafka; Flink and InfluxDB are the local stack's."""
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
            kafka_replication_factor=min(3, len(self.brokers)),
            flink_rest_url=local.flink,
            flink_python_executable=sys.executable,  # this "cluster's" TaskManager runs on this machine
            influx_url=local.influx,
            influx_token=st.influx_token("admin"),
            influx_write_token=st.influx_token("write"),
            influx_read_token=st.influx_token("read"),
            flink_influx_token_file=st.job_side().token_file,
        )
        return load(**{**base, **overrides})


def _start(d: Path, brokers: list[Broker], ips: list[str]) -> SecuredKafka:
    ca, ca_key = make_ca(d, "lab-ca")
    other_ca, _ = make_ca(d, "other-ca")
    keystore = make_broker_keystore(d, ca, ca_key, ips)
    voters = ",".join(f"{b.node_id}@{b.host}:{b.controller_port}" for b in brokers)
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    for b in brokers:
        b.dir.mkdir(parents=True, exist_ok=True)
        b.write_properties(keystore, voters, replicas=min(3, len(brokers)))
        b.format(cluster_id, standalone=False)
    pw = d / "kafka-password"
    pw.write_text(PASSWORD + "\n")
    os.chmod(pw, 0o600)
    for b in brokers:
        b.start()
    for b in brokers:
        b.wait_started()
    return SecuredKafka(brokers, ca, other_ca, pw)


def _stop(brokers: list[Broker]) -> None:
    for b in brokers:
        b.kill()


@pytest.fixture(scope="session")
def secured_kafka(tmp_path_factory, stack) -> Iterator[SecuredKafka]:
    d = tmp_path_factory.mktemp("secured-kafka")
    b = Broker(1, "127.0.0.1", _free_port(), _free_port(), _free_port(), d / "broker-1")
    sk = _start(d, [b], ["127.0.0.1"])
    yield sk
    _stop(sk.brokers)


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


# Docker sets the FORWARD policy to DROP, and with br_netfilter bridged traffic between the namespaces goes
# through it: let the bridge's own traffic pass while it exists.
_FORWARD = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


def _teardown_network(n: int) -> None:
    if shutil.which("iptables"):
        while subprocess.run(["iptables", "-D", *_FORWARD], capture_output=True).returncode == 0:
            pass
    for i in range(1, n + 1):
        subprocess.run(["ip", "netns", "del", f"lk-kafka-{i}"], capture_output=True)
        subprocess.run(["ip", "link", "del", f"lkv{i}"], capture_output=True)
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory, stack) -> Iterator[SecuredKafka]:
    """Three brokers on three hosts (network namespaces) of a bridge made here."""
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("network namespaces need root and iproute2")
    n = 3
    _teardown_network(n)  # what an interrupted run left
    _sh("ip", "link", "add", BRIDGE, "type", "bridge")
    _sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
    _sh("ip", "link", "set", BRIDGE, "up")
    if shutil.which("iptables"):
        subprocess.run(["iptables", "-I", *_FORWARD], capture_output=True)
    brokers = []
    try:
        for i in range(1, n + 1):
            ns, ip = f"lk-kafka-{i}", f"{SUBNET}.{10 + i}"
            _sh("ip", "netns", "add", ns)
            _sh("ip", "link", "add", f"lkv{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            _sh("ip", "link", "set", f"lkv{i}", "master", BRIDGE)
            _sh("ip", "link", "set", f"lkv{i}", "up")
            _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            d = tmp_path_factory.mktemp(f"kafka-{i}")
            brokers.append(Broker(i, ip, 9094, 9092, 9093, d, netns=ns))
        cluster = _start(tmp_path_factory.mktemp("cluster-ca"), brokers, [b.host for b in brokers])
        yield cluster
    finally:
        _stop(brokers)
        with contextlib.suppress(Exception):
            _teardown_network(n)
