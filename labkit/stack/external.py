"""The external backend: endpoints of existing Kafka, Flink and InfluxDB clusters, from settings."""

from __future__ import annotations

from labkit.errors import LabkitError
from labkit.settings import reveal
from labkit.stack.base import ServiceStatus, Stack, StackStatus
from labkit.stack.readiness import FlinkSlots, InfluxBucket, KafkaMetadata


class ExternalStack(Stack):
    mode = "external"

    def _not_applicable(self, what: str) -> LabkitError:
        return LabkitError(
            f"`{what}` does not apply in external mode: labkit does not control those clusters.",
            "manage them with their own tools, or set LABKIT_MODE=local to let labkit run a stack",
        )

    def influx_token(self, role: str = "admin") -> str:
        s = self.settings
        # the settings hold tokens as SecretStr (masked in repr); the client needs the raw value
        admin = reveal(s.influx_token)
        token = {
            "admin": admin,
            "write": reveal(s.influx_write_token) or admin,
            "read": reveal(s.influx_read_token) or admin,
        }[role]
        if not token:
            raise LabkitError("no InfluxDB token is configured for external mode.", "set LABKIT_INFLUX_TOKEN")
        return token

    def up(self, *, timeout: float = 120) -> StackStatus:
        from labkit.stack.kafka import ensure_topics

        for name, check in self._checks():
            check.wait_until_ready(timeout, service=name)
        ensure_topics(self.settings.kafka, self.settings)
        return self.status()

    def down(self, *, wipe: bool = False) -> StackStatus:
        raise self._not_applicable("down")

    def logs(self, service: str, lines: int = 50) -> str:
        raise self._not_applicable("logs")

    def _checks(self):
        s = self.settings
        return [
            ("kafka", KafkaMetadata(s.kafka, s)),
            ("flink", FlinkSlots(s.flink)),
            ("influxdb", InfluxBucket(s.influx, self.influx_token("read"), s.influx_org, s.influx_bucket)),
        ]

    def status(self) -> StackStatus:
        out = StackStatus(self.mode)
        addr = {"kafka": self.settings.kafka, "flink": self.settings.flink, "influxdb": self.settings.influx}
        for name, check in self._checks():
            c = check.safe_check()
            out.services.append(ServiceStatus(name, "external" if c.ok else "unreachable", addr[name], None, c.detail))
        return out
