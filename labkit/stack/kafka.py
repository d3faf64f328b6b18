"""Kafka: the local KRaft broker process and the topic helpers every backend shares."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import uuid

from labkit.errors import ServiceError
from labkit.stack.local_service import LocalService
from labkit.stack.provision import kafka as provision
from labkit.stack.provision.tools import require_java
from labkit.stack.readiness import KafkaMetadata, WaitStrategy

LOG4J2 = """status = warn
appender.file.type = Console
appender.file.name = STDOUT
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = STDOUT
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
"""


def new_cluster_id() -> str:
    """A KRaft cluster id, drawn the way Kafka's own ``Uuid.randomUuid`` draws one.

    An id is a URL-safe base64 UUID, so one in 64 starts with ``-``; Kafka redraws those because
    command-line tools read them as an option (``StorageTool format -t -dhQ…`` fails). Callers also
    pass it as ``--cluster-id=<id>``, which no parser can mistake.
    """
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


class LocalKafka(LocalService):
    name = "kafka"
    port_settings = ("LABKIT_KAFKA_PORT", "LABKIT_KAFKA_CONTROLLER_PORT")

    @property
    def address(self) -> str:
        return self.settings.kafka

    def prepare(self) -> None:
        s = self.settings
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        (self.home / "server.properties").write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.bootstrap.servers={s.bind_host}:{s.kafka_controller_port}",
                    f"listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port},CONTROLLER://{s.bind_host}:{s.kafka_controller_port}",
                    f"advertised.listeners=PLAINTEXT://{s.bind_host}:{s.kafka_port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={data}",
                    f"num.partitions={s.partitions}",
                    "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "auto.create.topics.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "log.retention.hours=24",
                    "message.max.bytes=2097152",
                ]
            )
            + "\n"
        )
        (self.home / "log4j2.properties").write_text(LOG4J2)
        if not (data / "meta.properties").exists():
            self.format_storage(new_cluster_id())

    def format_storage(self, cluster_id: str) -> None:
        """Format the KRaft log directory once, as a one-node cluster (broker and controller)."""
        r = subprocess.run(
            [
                *self._java(require_java()),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.home / "server.properties"),
                "-g",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise ServiceError(
                f"formatting Kafka storage in {self.home / 'data'} failed: {(r.stderr or r.stdout).strip()[-500:]}"
            )

    def _java(self, java: str) -> list[str]:
        return [
            java,
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}",
            f"-Dkafka.logs.dir={self.home}",
            "-cp",
            str(provision.jars_dir() / "*"),
        ]

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [*self._java(require_java()), "kafka.Kafka", str(self.home / "server.properties")], {}

    def readiness(self) -> WaitStrategy:
        return KafkaMetadata(self.address)

    def after_ready(self) -> None:
        ensure_topics(self.settings.kafka, self.settings)


def ensure_topics(bootstrap: str, settings) -> None:
    """Create the lab's topics if missing (explicitly: the Flink job must not race auto-creation)."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from labkit import kafka_clients

    admin = kafka_clients.admin(settings, bootstrap=bootstrap, client_id="labkit-admin")
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(t, num_partitions=settings.partitions, replication_factor=settings.kafka_replication_factor)
            for t in (settings.topic, settings.dlq_topic)
            if t not in existing
        ]
        if new:
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
    finally:
        admin.close()
