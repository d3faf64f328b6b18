"""How every Kafka client labkit makes connects: one owner for the security settings.

Three client libraries meet the same cluster: kafka-python (admin, consumers, the notebooks), librdkafka
(confluent-kafka, the fast producer) and the Java client inside the Flink job. Each spells SASL and TLS
differently; this module translates the lab's settings into each dialect, so a secured external cluster
(SASL/SCRAM over TLS) needs the settings once, not a change in every caller.

    from kafka import KafkaConsumer
    from labkit.kafka_clients import python_config
    consumer = KafkaConsumer("clickstream_events", **python_config())
"""

from __future__ import annotations

import re

from labkit.settings import Settings
from labkit.settings import get as get_settings


def _keep_metadata_refreshing() -> None:
    """kafka-python 3.0 (its asyncio rewrite; 3.0.12 checked) refreshes a client's metadata in one background loop,
    which ends for good when a refresh fails with anything but a KafkaError: a broker that dies mid-request answers
    with `ConnectionResetError`. The client then never learns a partition's new leader, and a producer waits for it
    until its flush deadline (CI: a broker killed mid-stream, `tests/cluster/test_three_brokers.py`). The loop
    is run again when it ends that way, as it would have gone on had the error been a KafkaError: the next refresh
    waits out the client's `retry_backoff_ms` (`ttl()`), so a broker that keeps failing is not hammered.
    `tests/stack/test_kafka_clients.py` fails one refresh and checks that metadata still comes. kafka-python 2.x has
    no such loop and is left alone."""
    import logging

    try:
        from kafka.cluster import ClusterMetadata
    except ImportError:  # pragma: no cover - kafka-python is a dependency
        return
    loop = getattr(ClusterMetadata, "_refresh_loop", None)
    if loop is None or getattr(loop, "_labkit_keeps_going", False):
        return
    log = logging.getLogger("labkit.kafka_clients")

    async def _refresh_loop(self):
        while True:
            try:
                return await loop(self)
            except ReferenceError:  # the client is gone (kafka-python holds its manager by weak reference)
                return
            except Exception as exc:  # noqa: BLE001 - anything that ended kafka-python's own loop
                if self.closed:
                    return
                log.warning(
                    "kafka-python's metadata refresh failed (%s: %s); refreshing again", type(exc).__name__, exc
                )
                # never a tight loop, whatever failed and wherever: at least the client's retry backoff between tries
                await self._wakeup(max(self.config.get("retry_backoff_ms", 100), 100) / 1000)

    _refresh_loop._labkit_keeps_going = True
    _refresh_loop._labkit_original = loop  # the test shows what it fixes
    ClusterMetadata._refresh_loop = _refresh_loop


_keep_metadata_refreshing()

# flink-sql-connector-kafka relocates the Kafka client under this package (checked in its jar)
SHADED_KAFKA = "org.apache.flink.kafka.shaded."


def sasl_password(settings: Settings) -> str | None:
    """The SASL password: the file wins over the variable (a file does not show up in `env` or `ps`)."""
    if settings.kafka_sasl_password_file is not None:
        return settings.kafka_sasl_password_file.read_text().strip()
    return settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None


def _sasl(s: Settings) -> bool:
    return s.kafka_security_protocol.startswith("SASL")


def _tls(s: Settings) -> bool:
    return s.kafka_security_protocol in ("SSL", "SASL_SSL")


def python_config(settings: Settings | None = None, *, bootstrap: str | None = None) -> dict:
    """Keyword arguments for kafka-python's KafkaConsumer, KafkaProducer and KafkaAdminClient."""
    s = settings or get_settings()
    kw: dict = {"bootstrap_servers": bootstrap or s.kafka}
    if s.kafka_security_protocol != "PLAINTEXT":
        kw["security_protocol"] = s.kafka_security_protocol
    if _sasl(s):
        kw.update(
            sasl_mechanism=s.kafka_sasl_mechanism,
            sasl_plain_username=s.kafka_sasl_username,
            sasl_plain_password=sasl_password(s),
        )
    if _tls(s) and s.kafka_ssl_ca_file:
        kw["ssl_cafile"] = str(s.kafka_ssl_ca_file)
    return kw


def admin(settings: Settings | None = None, *, client_id: str = "labkit", bootstrap: str | None = None):
    """A kafka-python KafkaAdminClient for the settings' cluster (security included). The caller closes it."""
    from kafka import KafkaAdminClient

    return KafkaAdminClient(**python_config(settings, bootstrap=bootstrap), client_id=client_id)


def librdkafka_config(settings: Settings | None = None, *, bootstrap: str | None = None) -> dict:
    """Configuration for confluent-kafka (librdkafka) clients."""
    s = settings or get_settings()
    conf: dict = {"bootstrap.servers": bootstrap or s.kafka}
    if s.kafka_security_protocol != "PLAINTEXT":
        conf["security.protocol"] = s.kafka_security_protocol.lower()
    if _sasl(s):
        conf.update(
            {
                "sasl.mechanisms": s.kafka_sasl_mechanism,
                "sasl.username": s.kafka_sasl_username,
                "sasl.password": sasl_password(s),
            }
        )
    if _tls(s) and s.kafka_ssl_ca_file:
        conf["ssl.ca.location"] = str(s.kafka_ssl_ca_file)
    return conf


def java_properties(settings: Settings | None = None) -> dict[str, str]:
    """Kafka Java client properties for the Flink job (without the `properties.` prefix of the SQL connector).

    The CA goes inline (`ssl.truststore.certificates`, PEM): the TaskManagers of a remote cluster cannot
    read a file on this machine, and the job then needs no file of its own on theirs."""
    s = settings or get_settings()
    props: dict[str, str] = {}
    if s.kafka_security_protocol != "PLAINTEXT":
        props["security.protocol"] = s.kafka_security_protocol
    if _sasl(s):
        # The SQL connector jar shades the Kafka client: the login module is named as it is in that jar.
        module = SHADED_KAFKA + (
            "org.apache.kafka.common.security.plain.PlainLoginModule"
            if s.kafka_sasl_mechanism == "PLAIN"
            else "org.apache.kafka.common.security.scram.ScramLoginModule"
        )

        def q(v: str | None) -> str:
            return '"' + (v or "").replace("\\", "\\\\").replace('"', '\\"') + '"'

        props["sasl.mechanism"] = s.kafka_sasl_mechanism
        props["sasl.jaas.config"] = (
            f"{module} required username={q(s.kafka_sasl_username)} password={q(sasl_password(s))};"
        )
    if _tls(s) and s.kafka_ssl_ca_file:
        props["ssl.truststore.type"] = "PEM"
        props["ssl.truststore.certificates"] = s.kafka_ssl_ca_file.read_text().strip()
    return props


#: what redact_secrets puts where a secret was
REDACTED = "***"

# A connector option, `'key' = 'value'` (SQL literals, '' inside), or a `'key': 'value'` of a printed dict.
_OPTION = re.compile(r"'(?P<key>[\w.-]+)'(?P<sep>\s*[=:]\s*)'(?P<value>(?:[^']|'')*)'")
# Options whose whole value is secret: passwords, private keys, and the inline certificates (long PEM text).
_SECRET_OPTION = re.compile(r"(?:password|\.key|\.certificates|\.certificate\.chain)$", re.I)
# A JAAS password, quoted "..." (\" and \\ escaped), '...', or ''...'' (the same inside a SQL literal).
_JAAS_PASSWORD = re.compile(
    r"""(?P<name>\bpassword\s*=\s*)(?:"(?:\\.|[^"\\])*"|''(?:\\.|(?!'')[^\\])*''|'(?:\\.|[^'\\])*')"""
)
_PEM = re.compile(r"-----BEGIN (?P<kind>[A-Z0-9 ]+)-----.*?-----END (?P=kind)-----", re.S)


def redact_secrets(text: str) -> str:
    """`text` (a DDL, a printed spec, a message) fit to show: JAAS passwords, the values of `*password`, `*.key`
    and inline-certificate options, and every PEM block replaced by REDACTED. The rest, the username included,
    stays as it is, so a DDL still says what is configured. Only for display: run jobs with the real text."""

    def option(m: re.Match) -> str:
        if not _SECRET_OPTION.search(m["key"]):
            return m[0]
        pems = [p["kind"] for p in _PEM.finditer(m["value"])]
        shown = f"{REDACTED} ({len(pems)} PEM {'block' if len(pems) == 1 else 'blocks'})" if pems else REDACTED
        return f"'{m['key']}'{m['sep']}'{shown}'"

    def jaas(m: re.Match) -> str:
        quoted = m[0][len(m["name"]) :]
        q = "''" if quoted.startswith("''") else quoted[0]  # the password's own quotes, kept
        return f"{m['name']}{q}{REDACTED}{q}"

    text = _OPTION.sub(option, text)
    text = _JAAS_PASSWORD.sub(jaas, text)
    return _PEM.sub(lambda m: f"-----BEGIN {m['kind']}----- {REDACTED} -----END {m['kind']}-----", text)


def diagnose(settings: Settings | None = None, *, bootstrap: str | None = None, timeout_s: float = 6):
    """Why Kafka cannot be used with these settings, as a LabkitError naming the setting to fix; None when a
    client connects, authenticates and reads metadata.

    Clients only say "unable to bootstrap" after a timeout whatever went wrong. This probes step by step:
    the TCP connection (address), then a librdkafka client whose error callback tells a TLS failure (CA,
    protocol) from a SASL one (user, password, mechanism)."""
    import socket

    from labkit.errors import ConfigError, ServiceError

    s = settings or get_settings()
    bootstrap = bootstrap or s.kafka
    first = bootstrap.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as e:
        return ServiceError(
            f"Kafka is not reachable at {bootstrap} ({getattr(e, 'strerror', None) or e}).",
            "check LABKIT_KAFKA_BOOTSTRAP (host:port of a broker) and that the cluster is up "
            "(this machine's stack: `labkit up`)",
        )
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    errors: list = []
    admin = AdminClient({**librdkafka_config(s, bootstrap=bootstrap), "error_cb": errors.append, "log_level": 0})
    try:
        admin.list_topics(timeout=timeout_s)
        return None
    except KafkaException:
        admin.poll(0.5)  # error callbacks are served here
    main = next((e for e in errors if e.name() in ("_AUTHENTICATION", "_SSL")), None)
    names = {e.name() for e in errors}
    seen = _reason(main.str()) if main else ""
    user = s.kafka_sasl_username
    if "_AUTHENTICATION" in names and "Unsupported SASL mechanism" in seen:
        return ConfigError(
            f"Kafka at {bootstrap} does not offer SASL mechanism {s.kafka_sasl_mechanism}: {seen}",
            "set LABKIT_KAFKA_SASL_MECHANISM to one the broker supports",
        )
    if "_AUTHENTICATION" in names:
        return ConfigError(
            f"Kafka at {bootstrap} refused user {user!r}: {seen}",
            "check LABKIT_KAFKA_SASL_USERNAME and the password in LABKIT_KAFKA_SASL_PASSWORD_FILE "
            "(or LABKIT_KAFKA_SASL_PASSWORD)",
        )
    if "_SSL" in names and "certificate verify failed" in seen:
        return ConfigError(
            f"the TLS certificate of Kafka at {bootstrap} is not trusted: {seen}",
            "set LABKIT_KAFKA_SSL_CA_FILE to the CA certificate (PEM) that signed the brokers' certificates",
        )
    if "_SSL" in names or s.kafka_security_protocol != "SASL_SSL":
        return ConfigError(
            f"Kafka at {bootstrap} accepts connections but not as {s.kafka_security_protocol}"
            + (f": {seen}" if "_SSL" in names else " (the broker closed the connection)."),
            "set LABKIT_KAFKA_SECURITY_PROTOCOL to what the listener expects (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)",
        )
    return ServiceError(
        f"Kafka at {bootstrap} did not answer a metadata request in {timeout_s:.0f}s: {seen or 'no reason given'}",
        "check that the brokers are healthy and LABKIT_KAFKA_BOOTSTRAP names one of them",
    )


def _reason(text: str) -> str:
    """librdkafka's sentence without its connection prefix and timing suffix."""
    text = re.sub(r"^\S+://\S+/\S+: ", "", text)
    return re.sub(r" \(after \d+ms in state \w+\)", "", text).strip()
