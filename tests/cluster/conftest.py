"""Kafka clusters secured like production ones, made by the tests: SASL/SCRAM-SHA-512 over TLS.

The certificates come from a CA made here with openssl (not from labkit), the SCRAM user is written by
Kafka's own storage tool, and the brokers are the Kafka release the lab pins. Clients reach them only on
their SASL_SSL listeners; brokers talk to each other on a plaintext listener of their own.

Every broker runs with the cap on partitions per topic a shared cluster needs for workshop mode
(labkit.stack.provision.kafka_policy: its jar on the classpath, its properties in server.properties).

- `secured_kafka`: one broker on loopback.
- `kafka_cluster`: three KRaft brokers (each also a controller), each on a host of its own: a network
  namespace with its own address on a bridge this test makes (10.231.0.0/24), reachable from this machine,
  where the Flink and InfluxDB of the local stack run. Torn down afterwards.
"""

from __future__ import annotations

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

from labkit.stack.kafka import LOG4J2, new_cluster_id
from labkit.stack.provision import kafka as kafka_dist
from labkit.stack.provision import kafka_policy
from labkit.stack.provision.tools import require_java
from tests.requirements import need

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
    """The JVM of a broker and of its storage tool: Kafka's jars and the partition cap's (kafka_policy), which
    both load, as server.properties names the policy class."""
    (d / "log4j2.properties").write_text(LOG4J2)
    classpath = f"{kafka_dist.jars_dir() / '*'}{os.pathsep}{kafka_policy.provision()}"
    return [require_java(), "-Xms128m", "-Xmx400m", f"-Dlog4j2.configurationFile={d / 'log4j2.properties'}",
            "-cp", classpath]  # fmt: skip


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
                    # ACLs on, as on a shared cluster: the lab's admin user is a super user, and so is the
                    # brokers' own PLAINTEXT traffic (a real cluster would authenticate that too).
                    "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                    f"super.users=User:{USER};User:ANONYMOUS",
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
                    # the cap on partitions per topic a shared cluster runs with (workshop mode)
                    *(f"{k}={v}" for k, v in kafka_policy.broker_properties().items()),
                ]
            )
            + "\n"
        )
        return props

    def format(self, cluster_id: str, standalone: bool) -> None:
        subprocess.run(
            [*_java(self.dir), "kafka.tools.StorageTool", "format", *(["--standalone"] if standalone else []),
             f"--cluster-id={cluster_id}", "-c", str(self.dir / "server.properties"),
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
    cluster_id = new_cluster_id()
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


@pytest.fixture
def free_slots(stack):
    """`free_slots(n)`: make sure the local Flink has n free task slots, whatever else runs there (after `make
    demo` the lab's own pipeline holds some). Missing slots come from an added TaskManager, stopped again after
    the test; the running jobs are left alone. Where slots cannot be added, the test fails saying so."""
    import httpx

    added: list[str] = []

    def need(n: int) -> None:
        ov = httpx.get(f"{stack.get_flink_url()}/overview", timeout=5).json()
        while ov.get("slots-available", 0) < n:
            print(f"[test] {n} free task slot(s) needed, {ov.get('slots-available', 0)} free: adding a TaskManager")
            try:
                added.append(stack.add_taskmanager())
            except Exception as e:
                pytest.fail(f"this test needs {n} free task slots and cannot add a TaskManager: {e}")
            ov = httpx.get(f"{stack.get_flink_url()}/overview", timeout=5).json()

    yield need
    for name in reversed(added):
        stack.remove_taskmanager(name)


def _sh(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True)


# Docker sets the FORWARD policy to DROP, and with br_netfilter bridged traffic between the namespaces goes
# through it: let the bridge's own traffic pass while it exists.
_FORWARD = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-j", "ACCEPT"]


class Network:
    """A bridge on this machine (10.231.0.1) and hosts on it: each a network namespace with an address of its
    own, its own loopback and nothing else. What an interrupted run left is removed first."""

    def __init__(self) -> None:
        self.hosts: list[str] = []

    @staticmethod
    def teardown() -> None:
        if shutil.which("iptables"):
            while subprocess.run(["iptables", "-D", *_FORWARD], capture_output=True).returncode == 0:
                pass
        listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
        for ns in listed:
            if ns.startswith("lk-"):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)  # takes the veths' ends with it

    def create(self) -> None:
        from labkit import leftovers

        leftovers.MADE_NAMESPACES = True  # this run's end removes them, however it ends
        self.teardown()
        _sh("ip", "link", "add", BRIDGE, "type", "bridge")
        _sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", BRIDGE)
        _sh("ip", "link", "set", BRIDGE, "up")
        if shutil.which("iptables"):
            subprocess.run(["iptables", "-I", *_FORWARD], capture_output=True)

    def add_host(self, ns: str, ip: str) -> str:
        veth = f"lkv{len(self.hosts) + 1}"
        _sh("ip", "netns", "add", ns)
        _sh("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _sh("ip", "link", "set", veth, "master", BRIDGE)
        _sh("ip", "link", "set", veth, "up")
        _sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{ip}/24", "dev", "eth0")
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        _sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        self.hosts.append(ns)
        return ns


@pytest.fixture(scope="session")
def network() -> Iterator[Network]:
    need(os.geteuid() == 0 and shutil.which("ip") is not None, "network namespaces need root and iproute2")
    net = Network()
    net.create()
    try:
        yield net
    finally:
        net.teardown()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory, stack, network) -> Iterator[SecuredKafka]:
    """Three brokers on three hosts (network namespaces) of a bridge made here."""
    brokers = []
    try:
        for i in range(1, 4):
            ip = f"{SUBNET}.{10 + i}"
            ns = network.add_host(f"lk-kafka-{i}", ip)
            d = tmp_path_factory.mktemp(f"kafka-{i}")
            brokers.append(Broker(i, ip, 9094, 9092, 9093, d, netns=ns))
        cluster = _start(tmp_path_factory.mktemp("cluster-ca"), brokers, [b.host for b in brokers])
        yield cluster
    finally:
        _stop(brokers)


# --- Flink and InfluxDB as hosts of their own -------------------------------------------------------------


@dataclass
class Process:
    """A service started in a host (network namespace) as a process group of its own, so a kill takes the
    whole host's share of it (a TaskManager and its Python workers), as a crashed machine would."""

    name: str
    netns: str
    ip: str
    dir: Path
    proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.dir / "out.log"

    def start(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", self.netns, *cmd],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                start_new_session=True,
            )

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


def _wait_http(url: str, ok, what: Process, timeout: float = 180) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
            if ok(httpx.get(url, timeout=3)):
                return
        if what.proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what.name} did not become ready at {url}:\n" + what.log.read_text()[-3000:])
        time.sleep(1)


FLINK_IP, TM_IPS, INFLUX_IP = f"{SUBNET}.21", [f"{SUBNET}.22", f"{SUBNET}.23"], f"{SUBNET}.31"
TM_SLOTS = 2


@dataclass
class FlinkCluster:
    """A Flink session cluster (a JobManager and two TaskManagers of 2 slots, each a host) and an InfluxDB
    host, onboarded here with the HTTP API. Checkpoints go to a folder every host sees, as a shared file
    system (NFS, S3) would be on real machines."""

    jobmanager: Process
    taskmanagers: list[Process]
    influxdb: Process
    tokens: dict[str, str]
    token_file: Path

    @property
    def rest_url(self) -> str:
        return f"http://{FLINK_IP}:8081"

    @property
    def influx_url(self) -> str:
        return f"http://{INFLUX_IP}:8086"

    def taskmanager_hosts(self) -> list[str]:
        import httpx

        tms = httpx.get(f"{self.rest_url}/taskmanagers", timeout=5).json()["taskmanagers"]
        return sorted(tm["path"].split("@")[-1].split(":")[0] for tm in tms)

    def settings(self, kafka: SecuredKafka, **overrides):
        """External mode with every service on its own host: Kafka on three, Flink on three, InfluxDB."""
        return kafka.settings(
            flink_rest_url=self.rest_url,
            influx_url=self.influx_url,
            influx_token=self.tokens["admin"],
            influx_write_token=self.tokens["write"],
            influx_read_token=self.tokens["read"],
            flink_influx_token_file=str(self.token_file),
            **overrides,
        )


def _flink_conf(d: Path, host_ip: str, checkpoints: Path) -> Path:
    from labkit.stack.flink import conf_folder

    return conf_folder(d / "conf", {
        "jobmanager.rpc.address": FLINK_IP,
        "jobmanager.bind-host": host_ip,
        "rest.address": FLINK_IP,
        "rest.bind-address": host_ip,
        "rest.port": 8081,
        "taskmanager.host": host_ip,
        "taskmanager.bind-host": host_ip,
        "taskmanager.numberOfTaskSlots": TM_SLOTS,
        "taskmanager.load-balance.mode": "SLOTS",  # spread a job over both TaskManagers
        "jobmanager.memory.process.size": "1024m",
        "taskmanager.memory.process.size": "1600m",
        "heartbeat.timeout": 15000,
        "state.checkpoints.dir": f"file://{checkpoints}",
        "state.savepoints.dir": f"file://{checkpoints.parent / 'savepoints'}",
        "python.executable": sys.executable,
    })  # fmt: skip


def _onboard_influx(url: str, org: str, bucket: str) -> dict[str, str]:
    """InfluxDB's own setup API, not labkit's: an admin token, then write and read tokens for the bucket."""
    import httpx

    admin = "admin-" + uuid.uuid4().hex
    r = httpx.post(f"{url}/api/v2/setup", timeout=10, json={
        "username": "instructor", "password": uuid.uuid4().hex, "org": org, "bucket": bucket, "token": admin,
    })  # fmt: skip
    r.raise_for_status()
    ids = r.json()["bucket"]
    tokens = {"admin": admin}
    for action in ("write", "read"):
        r = httpx.post(f"{url}/api/v2/authorizations", timeout=10, headers={"Authorization": f"Token {admin}"},
                       json={"orgID": ids["orgID"], "description": f"lab {action}", "permissions": [
                           {"action": action, "resource": {"type": "buckets", "id": ids["id"], "orgID": ids["orgID"]}}
                       ]})  # fmt: skip
        r.raise_for_status()
        tokens[action] = r.json()["token"]
    return tokens


@pytest.fixture(scope="session")
def flink_cluster(tmp_path_factory, stack, network, kafka_cluster) -> Iterator[FlinkCluster]:
    from labkit.settings import get
    from labkit.stack.flink import flink_env
    from labkit.stack.provision import flink as flink_dist
    from labkit.stack.provision import influxdb as influx_dist

    local = get()
    root = tmp_path_factory.mktemp("flink-cluster")
    checkpoints = root / "shared" / "checkpoints"
    checkpoints.mkdir(parents=True)
    procs: list[Process] = []
    try:
        influx = Process("influxdb", network.add_host("lk-influx", INFLUX_IP), INFLUX_IP, root / "influxdb")
        influx.start([str(influx_dist.influxd_path()), f"--bolt-path={influx.dir / 'influxd.bolt'}",
                      f"--engine-path={influx.dir / 'engine'}", f"--sqlite-path={influx.dir / 'influxd.sqlite'}",
                      f"--http-bind-address={INFLUX_IP}:8086", "--ui-disabled", "--reporting-disabled",
                      "--log-level=warn"])  # fmt: skip
        procs.append(influx)
        jm = Process("jobmanager", network.add_host("lk-flink-jm", FLINK_IP), FLINK_IP, root / "jobmanager")
        tms = [
            Process(f"taskmanager-{i}", network.add_host(f"lk-flink-tm-{i}", ip), ip, root / f"taskmanager-{i}")
            for i, ip in enumerate(TM_IPS, 1)
        ]
        for p, script in [(jm, "jobmanager.sh"), *((tm, "taskmanager.sh") for tm in tms)]:
            conf = _flink_conf(p.dir, p.ip, checkpoints)
            env = {**flink_env(local), "FLINK_CONF_DIR": str(conf), "FLINK_LOG_DIR": str(p.dir),
                   "FLINK_PID_DIR": str(p.dir)}  # fmt: skip
            p.start([str(flink_dist.flink_home() / "bin" / script), "start-foreground"], env)
            procs.append(p)
        _wait_http(f"http://{INFLUX_IP}:8086/health", lambda r: r.status_code == 200, influx)
        tokens = _onboard_influx(f"http://{INFLUX_IP}:8086", local.influx_org, local.influx_bucket)
        token_file = root / "shared" / "influx-write-token"  # where the TaskManagers read it
        token_file.write_text(tokens["write"])
        os.chmod(token_file, 0o600)
        _wait_http(f"http://{FLINK_IP}:8081/overview", lambda r: r.json()["taskmanagers"] == 2, jm)
        yield FlinkCluster(jm, tms, influx, tokens, token_file)
    finally:
        for p in procs:
            p.kill()
