"""One settings object for the CLI, notebooks and tests.

Read from environment variables prefixed `LABKIT_` and from a `.env` file in the working directory
(see docs/configuration.md). Secrets are not settings: see labkit.credentials.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from labkit.errors import ConfigError
from labkit.paths import default_home

Mode = Literal["local", "docker", "external"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LABKIT_", env_file=".env", extra="ignore")

    mode: Mode = Field("local", description="local (processes on this machine), docker (compose/) or external")
    home: Path = Field(default_factory=default_home, description="data, logs, pids and secrets of the local stack")
    bind_host: str = Field("127.0.0.1", description="address local services listen on")

    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_bootstrap: str | None = Field(None, description="host:port list; default bind_host:kafka_port")
    # What the Flink job uses to reach Kafka: differs from kafka_bootstrap only when Flink runs in containers.
    kafka_bootstrap_for_flink: str | None = None

    # Kafka security (external clusters): every client labkit makes (producer, consumers, admin, the Flink job)
    # gets these through labkit.kafka_clients. The password comes from LABKIT_KAFKA_SASL_PASSWORD or, better,
    # a file (LABKIT_KAFKA_SASL_PASSWORD_FILE, mode 0600); the CA from a PEM file.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ssl_ca_file: Path | None = Field(None, description="PEM CA of the brokers' certificates; default: system")
    kafka_replication_factor: int = Field(1, ge=1, description="of the topics labkit creates")

    flink_rest_port: int = Field(8081, ge=1, le=65535)
    flink_rpc_port: int = Field(6123, ge=1, le=65535)
    flink_rest_url: str | None = None
    flink_taskmanager_slots: int = Field(4, ge=1)
    flink_parallelism: int = Field(2, ge=1)
    # The Python (with PyFlink) the TaskManagers of an external cluster run the job's Python parts with;
    # default: the cluster's own `python.executable`. Local and docker mode set it themselves.
    flink_python_executable: str | None = None

    influx_port: int = Field(8086, ge=1, le=65535)
    influx_url: str | None = None
    influx_url_for_flink: str | None = None
    influx_org: str = "clickstream-lab"
    influx_bucket: str = "clickstream"
    # Tokens are SecretStr, like the Kafka password: repr(settings), str() and model_dump_json() show "**********",
    # so a settings object printed in a notebook, a log line or a traceback's locals does not leak them.
    # Code that sends a token reads it with reveal() (or .get_secret_value()).
    influx_token: SecretStr | None = Field(None, description="admin token (external/docker); local: generated")
    influx_write_token: SecretStr | None = None
    influx_read_token: SecretStr | None = None

    # Where the TaskManagers find the write-only token (a path on their side); local mode writes one itself.
    flink_influx_token_file: str | None = None

    grafana_url: str = "http://127.0.0.1:3000"
    # docker mode: a compose file laid over compose/docker-compose.yml (CI: compose/ci/docker-compose.ci.yml,
    # images built here instead of Docker Hub's); relative to compose/.
    compose_override: str | None = None

    # Workshop mode (labkit.workshop): an attendee's settings file names their namespace. Every Kafka topic,
    # consumer group and Flink job labkit names for them then starts with "<namespace>.", which is what their
    # Kafka user's prefix ACLs allow; notebooks run unchanged. Unset: names are used as they are.
    namespace: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{0,30}$", description="attendee prefix")

    topic: str = "clickstream_events"
    dlq_topic: str = "clickstream_dlq"
    # Order confirmations (the generator's `orders` option, notebook 10's interval join): only produce(orders=...)
    # writes there, so `labkit up` does not create it; produce does, the first time it is needed.
    orders_topic: str = "clickstream_orders"
    partitions: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _scope_topics(self) -> Settings:
        # The lab's topics follow the namespace too, so an attendee's file need not spell them out; so does
        # the default bucket, named as `workshop create` names an attendee's (<bucket>-<namespace>).
        if self.namespace:
            self.topic, self.dlq_topic = self.scoped(self.topic), self.scoped(self.dlq_topic)
            self.orders_topic = self.scoped(self.orders_topic)
            if "influx_bucket" not in self.model_fields_set:
                self.influx_bucket = f"{self.influx_bucket}-{self.namespace}"
        return self

    def scoped(self, name: str) -> str:
        """`name` inside this user's namespace ("a07.lab03_scratch"); unchanged without one, or if already in it.

        Every place labkit turns a name into a Kafka topic, a consumer group or a Flink job name calls this,
        so a notebook's literal "lab03_scratch" is an attendee's own topic on a shared cluster."""
        if not self.namespace or name.startswith(self.namespace + "."):
            return name
        return f"{self.namespace}.{name}"

    def pipeline_group(self, topic: str | None = None) -> str:
        """The consumer group of the clickstream job reading `topic` (default: the lab's topic)."""
        return self.scoped(f"labkit-{self.scoped(topic or self.topic)}")

    @field_validator("bind_host")
    @classmethod
    def _not_empty(cls, v: str) -> str:
        if not v:
            raise ValueError("must not be empty")
        return v

    # Derived endpoints: explicit settings win, otherwise they follow the ports.
    @property
    def kafka(self) -> str:
        return self.kafka_bootstrap or f"{self.bind_host}:{self.kafka_port}"

    @property
    def kafka_for_flink(self) -> str:
        return self.kafka_bootstrap_for_flink or self.kafka

    @property
    def flink(self) -> str:
        return (self.flink_rest_url or f"http://{self.bind_host}:{self.flink_rest_port}").rstrip("/")

    @property
    def influx(self) -> str:
        return (self.influx_url or f"http://{self.bind_host}:{self.influx_port}").rstrip("/")

    @property
    def influx_for_flink(self) -> str:
        return (self.influx_url_for_flink or self.influx).rstrip("/")

    def dlq_topic_for(self, topic: str) -> str:
        """The dead-letter topic of `topic`: the configured one for the lab's topic, `<topic>_dlq` otherwise."""
        topic = self.scoped(topic)
        return self.dlq_topic if topic == self.topic else f"{topic}_dlq"

    def ports(self) -> dict[str, int]:
        """Ports the local stack binds, by the setting that controls each."""
        return {
            "LABKIT_KAFKA_PORT": self.kafka_port,
            "LABKIT_KAFKA_CONTROLLER_PORT": self.kafka_controller_port,
            "LABKIT_FLINK_REST_PORT": self.flink_rest_port,
            "LABKIT_FLINK_RPC_PORT": self.flink_rpc_port,
            "LABKIT_INFLUX_PORT": self.influx_port,
        }


def reveal(secret: SecretStr | str | None) -> str | None:
    """The raw value of a secret setting (None when unset), for the one place that sends it.

    A plain str is returned as it is: `model_copy(update=...)` does not validate, so a caller may have put one
    there, and a client must still get the value rather than an AttributeError."""
    if secret is None:
        return None
    return secret.get_secret_value() if isinstance(secret, SecretStr) else secret


def load(**overrides: object) -> Settings:
    """Settings from env/.env plus `overrides`; a bad value becomes a ConfigError naming the variable.

    `LABKIT_ENV_FILE` names another settings file than `./.env` (a workshop attendee's, for instance)."""
    env_file = os.environ.get("LABKIT_ENV_FILE") or ".env"
    if env_file != ".env" and not Path(env_file).is_file():
        raise ConfigError(
            f"LABKIT_ENV_FILE names {env_file}, which is not a file.",
            "point LABKIT_ENV_FILE at the settings file you were given (e.g. a01.env), or unset it",
        )
    try:
        s = Settings(_env_file=env_file, **overrides)
    except ValidationError as e:
        err = e.errors()[0]
        name = "LABKIT_" + str(err["loc"][0]).upper() if err["loc"] else "a LABKIT_ setting"
        raise ConfigError(
            f"setting {name} is invalid: {err['msg']} (got {err.get('input')!r}).",
            f"fix {name} in your environment or .env file; see docs/configuration.md",
        ) from None
    _check_kafka_security(s)
    _check_own_resources(s)
    ports = s.ports()
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ConfigError(
                f"{name} and {seen[port]} are both {port}; each service needs its own port.",
                "set one of them to a free port in your environment or .env file",
            )
        seen[port] = name
    return s


def _check_own_resources(s: Settings) -> None:
    """An attendee (LABKIT_NAMESPACE) writes into their own bucket with their own token file, as `workshop create`
    named them. Pointing the job at another attendee's (`.../a02.write-token`, `clickstream-a02`) used to build a
    spec without complaint. This refuses it early, with the setting to fix; it is a guard against mistakes and the
    obvious attempt, not the boundary: that is where each attendee's job runs (docs/architecture.md, isolation)."""
    ns = s.namespace
    if not ns:
        return
    if not s.influx_bucket.endswith(f"-{ns}"):
        raise ConfigError(
            f"setting LABKIT_INFLUX_BUCKET is {s.influx_bucket!r}, which is not attendee {ns}'s bucket.",
            f"use the bucket your settings file names (it ends in -{ns}), or remove LABKIT_INFLUX_BUCKET",
        )
    token = s.flink_influx_token_file
    if token and Path(token).name != f"{ns}.write-token":
        raise ConfigError(
            f"setting LABKIT_FLINK_INFLUX_TOKEN_FILE is {token}, which is not attendee {ns}'s token file.",
            f"use the file your settings file names ({ns}.write-token), or remove LABKIT_FLINK_INFLUX_TOKEN_FILE",
        )


def _check_kafka_security(s: Settings) -> None:
    """A security setting that cannot work is named here, before a client times out on it."""
    fix = "in your environment or .env file; see docs/configuration.md (Kafka security)"
    if s.kafka_security_protocol.startswith("SASL"):
        if not s.kafka_sasl_username:
            raise ConfigError(
                f"LABKIT_KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol} but LABKIT_KAFKA_SASL_USERNAME is not set.",
                f"set LABKIT_KAFKA_SASL_USERNAME {fix}",
            )
        if s.kafka_sasl_password is None and s.kafka_sasl_password_file is None:
            raise ConfigError(
                f"LABKIT_KAFKA_SECURITY_PROTOCOL is {s.kafka_security_protocol} but no password is given.",
                f"set LABKIT_KAFKA_SASL_PASSWORD_FILE (a file readable only by you) or LABKIT_KAFKA_SASL_PASSWORD {fix}",
            )
        if s.kafka_sasl_password_file is not None and not s.kafka_sasl_password_file.is_file():
            raise ConfigError(
                f"LABKIT_KAFKA_SASL_PASSWORD_FILE {s.kafka_sasl_password_file} does not exist.",
                f"point LABKIT_KAFKA_SASL_PASSWORD_FILE at the file holding the password {fix}",
            )
    if s.kafka_ssl_ca_file is not None:
        ca = s.kafka_ssl_ca_file
        if not ca.is_file() or b"-----BEGIN CERTIFICATE-----" not in ca.read_bytes():
            raise ConfigError(
                f"LABKIT_KAFKA_SSL_CA_FILE {ca} is not a PEM certificate file.",
                f"point LABKIT_KAFKA_SSL_CA_FILE at the CA certificate (PEM) that signed the brokers' certificates {fix}",
            )


@lru_cache(maxsize=1)
def get() -> Settings:
    """The process-wide settings (cached; call `get.cache_clear()` after changing the environment)."""
    return load()
