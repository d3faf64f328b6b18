"""Workshop mode: one shared cluster, N attendees, each in a namespace of their own.

The instructor runs these with admin settings for the shared cluster (external mode: a Kafka super user, an
InfluxDB admin token). Per attendee `create` makes:

* a namespace `aNN`: every topic, consumer group and Flink job name labkit makes for them starts with `aNN.`
  (`Settings.scoped`), so the notebooks run unchanged;
* a Kafka SCRAM user `labkit-aNN` with prefix ACLs on topics and groups `aNN.` and nothing else, and a byte-rate
  quota, so one runaway producer is throttled by the brokers instead of slowing the others, and a
  `controller_mutation_rate` quota (partitions created or deleted per second), so one attendee cannot flood the
  controller with partitions. The partitions of one new topic are capped by the brokers' topic policy
  (`labkit.stack.provision.kafka_policy`), which the shared cluster must load: ACLs cannot say how large a topic
  may be;
* an InfluxDB bucket `<bucket>-aNN` with a write token (for their Flink job) and a read token (for notebooks),
  each scoped to that bucket only;
* one settings file `aNN.env` (0600: it holds their password and tokens) to use as `.env` or `LABKIT_ENV_FILE`,
  by default in `<LABKIT_HOME>/workshop/attendees`: outside any repository, so it cannot be committed by accident.

Flink has no users. With `own_flink=True` (`--own-flink`, root only) each attendee gets a Flink session cluster
of their own, run as a Unix user of their own on an address only they (and the instructor) may reach: see
labkit/workshop_flink.py. Without it, attendees share one session cluster and are kept apart by job names only
(each lists and cancels its own), which stops mistakes, not a curious attendee. The write token reaches their
job as a file their TaskManagers read (shared cluster: `token_dir`, a folder they see at the same path); tokens
never travel in a job's configuration, which the Flink UI shows to all.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import pandas as pd

from labkit import kafka_clients
from labkit.console import say
from labkit.credentials import write_secret
from labkit.errors import ConfigError, ServiceError
from labkit.settings import Settings, reveal
from labkit.settings import get as get_settings
from labkit.stack.influxdb import bucket_token

USER_PREFIX = "labkit-"
DESCRIPTION = "labkit workshop"
# Per attendee and broker. The demo produces ~2 MB/s at its peak (50k events in ~20 s); a runaway producer
# (a `while True` cell) is held at this rate while the others keep theirs.
PRODUCER_BYTES_PER_S = 4_000_000
CONSUMER_BYTES_PER_S = 8_000_000
# Partitions created or deleted per second per attendee (KIP-599). The lab's topics have 4 partitions, and a
# scratch topic is deleted and created again with its dead-letter topic: 16 mutations. Kafka lets a burst of
# rate x 11 s (110) through and refuses the next requests with THROTTLING_QUOTA_EXCEEDED until the rate is back
# under this. It limits raising partition counts, which the brokers' topic policy does not see (CreatePartitions).
CONTROLLER_MUTATIONS_PER_S = 10
QUOTA_KEYS = ("producer_byte_rate", "consumer_byte_rate", "controller_mutation_rate")
LIVE = ("RUNNING", "RESTARTING", "CREATED", "INITIALIZING")  # job states that hold slots


@dataclass
class Attendee:
    name: str  # the namespace, "a07"
    kafka_user: str
    bucket: str
    settings_file: str
    # The write-token file their Flink job reads; teardown deletes it with the settings file. Empty in a
    # registry written before it was recorded (teardown then finds it in the settings file).
    token_file: str = ""
    # Their own Flink cluster's folder (labkit.workshop_flink), or "" when they use the shared one.
    flink_root: str = ""

    def settings(self, **overrides: object) -> Settings:
        """The attendee's settings, as labkit loads them from their file (LABKIT_ variables still win)."""
        return Settings(_env_file=self.settings_file, **overrides)


def _registry(settings: Settings) -> Path:
    return settings.home / "workshop" / "attendees.json"


def default_out_dir(settings: Settings) -> Path:
    """Where `create` writes the attendees' settings files unless told: under the lab's home, not the working
    folder. They hold passwords and tokens, and `./attendees` inside a clone of this repository was one
    `git add .` away from being committed."""
    return settings.home / "workshop" / "attendees"


def attendees(settings: Settings | None = None) -> list[Attendee]:
    """The attendees `create` made (names and files; the secrets are only in their files)."""
    p = _registry(settings or get_settings())
    return [Attendee(**a) for a in json.loads(p.read_text())] if p.exists() else []


def _save(settings: Settings, people: list[Attendee]) -> None:
    write_secret(_registry(settings), json.dumps([asdict(a) for a in people], indent=1))


def _require_admin(settings: Settings) -> None:
    if settings.mode != "external":
        raise ConfigError(
            f"workshop commands manage a shared cluster, but LABKIT_MODE is {settings.mode}.",
            "run them with the instructor's external-mode settings (LABKIT_MODE=external and the cluster's addresses)",
        )
    if settings.namespace:
        raise ConfigError(
            f"these settings belong to attendee {settings.namespace} (LABKIT_NAMESPACE is set).",
            "run workshop commands with the instructor's settings, without LABKIT_NAMESPACE",
        )
    if not reveal(settings.influx_token):
        raise ConfigError(
            "creating attendees' buckets and tokens needs the InfluxDB admin token.", "set LABKIT_INFLUX_TOKEN"
        )


# ---- Kafka ----------------------------------------------------------------------------------------------


def _admin(settings: Settings):
    return kafka_clients.admin(settings, client_id="labkit-workshop")


def _acls(user: str, prefix: str) -> list:
    from kafka.admin import ACL, ACLOperation, ACLPermissionType, ACLResourcePatternType, ResourcePattern, ResourceType

    # Topics: what the course does (create, produce, consume, describe, delete), and not ALTER, which is what
    # CreatePartitions asks for: no topic policy sees a partition increase in Kafka 4.1 (the cap, stack/provision/
    # kafka_policy.py, covers CreateTopics only), so without ALTER nobody but the instructor can raise a count.
    topic_ops = (ACLOperation.READ, ACLOperation.WRITE, ACLOperation.CREATE, ACLOperation.DELETE,
                 ACLOperation.DESCRIBE, ACLOperation.DESCRIBE_CONFIGS)  # fmt: skip
    grants = [(ResourceType.TOPIC, op) for op in topic_ops] + [(ResourceType.GROUP, ACLOperation.ALL)]
    return [
        ACL(f"User:{user}", "*", op, ACLPermissionType.ALLOW, ResourcePattern(kind, prefix, ACLResourcePatternType.PREFIXED))
        for kind, op in grants
    ]  # fmt: skip


def _send(admin, request):
    """Send a protocol message kafka-python has no admin call for (client quotas) on the admin's connections."""

    async def send():
        return await admin._manager.send(request)

    return admin._manager.run(send)


def _mechanism(settings: Settings):
    """The SCRAM mechanism attendees' users get: the instructor's own (None on a cluster without SASL)."""
    from kafka.admin import ScramMechanism

    return ScramMechanism[settings.kafka_sasl_mechanism.replace("-", "_")] if settings.kafka_sasl_username else None


def _quota_ops(rates: dict[str, float] | None) -> list[tuple[str, float, bool]]:
    """(key, value, remove) for each quota to change: the keys in `rates` are set, the others left as they are
    (Kafka refuses a value of 0); None removes every key workshop mode sets, whichever the attendee has."""
    if rates is None:
        return [(k, 0.0, True) for k in QUOTA_KEYS]
    if unknown := set(rates) - set(QUOTA_KEYS):
        raise ValueError(f"not a workshop quota: {sorted(unknown)} (known: {', '.join(QUOTA_KEYS)})")
    return [(k, float(rates[k]), False) for k in QUOTA_KEYS if k in rates]


def _set_quota(admin, user: str, rates: dict[str, float] | None) -> None:
    """Quotas of `user` (None: remove them all). kafka-python has the AlterClientQuotas message but no call for
    it yet, so this sends it through the admin client's connection manager."""
    from kafka.protocol.admin import AlterClientQuotasRequest

    entry = AlterClientQuotasRequest.EntryData(
        entity=[AlterClientQuotasRequest.EntryData.EntityData(entity_type="user", entity_name=user)],
        ops=[
            AlterClientQuotasRequest.EntryData.OpData(key=k, value=v, remove=remove)
            for k, v, remove in _quota_ops(rates)
        ],
    )

    response = _send(admin, AlterClientQuotasRequest(entries=[entry], validate_only=False))
    for e in response.entries:
        if e.error_code:
            raise ServiceError(f"Kafka refused the quota of {user}: {e.error_message or e.error_code}")


def quotas(settings: Settings | None = None) -> dict[str, dict[str, float]]:
    """Quotas per user, as the brokers hold them: {user: {key: value}}, with the byte rates and the
    `controller_mutation_rate` that `create` sets."""
    from kafka.protocol.admin import DescribeClientQuotasRequest

    settings = settings or get_settings()
    admin = _admin(settings)
    try:
        r = _send(admin, DescribeClientQuotasRequest(
            components=[DescribeClientQuotasRequest.ComponentData(entity_type="user", match_type=2, match=None)],
            strict=False,
        ))  # fmt: skip
    finally:
        admin.close()
    return {
        next(e.entity_name for e in entry.entity if e.entity_type == "user"): {v.key: v.value for v in entry.values}
        for entry in (r.entries or [])
    }


# ---- InfluxDB -------------------------------------------------------------------------------------------


def _influx(settings: Settings) -> httpx.Client:
    # the settings hold the token as a SecretStr (masked in repr); the header needs the raw value
    token = reveal(settings.influx_token)
    return httpx.Client(base_url=settings.influx, timeout=15, headers={"Authorization": f"Token {token}"})


def _org_id(http: httpx.Client, org: str) -> str:
    r = http.get("/api/v2/orgs", params={"org": org})
    if r.status_code == 401:
        raise ConfigError(
            "InfluxDB rejects LABKIT_INFLUX_TOKEN.", "set LABKIT_INFLUX_TOKEN to an admin (all-access) token"
        )
    orgs = r.json().get("orgs") or []
    if not orgs:
        raise ConfigError(f"InfluxDB has no organization {org!r}.", "set LABKIT_INFLUX_ORG to the shared cluster's org")
    return orgs[0]["id"]


def _bucket(http: httpx.Client, org_id: str, name: str) -> dict:
    found = http.get("/api/v2/buckets", params={"orgID": org_id, "name": name}).json().get("buckets") or []
    if found:
        return found[0]
    r = http.post(
        "/api/v2/buckets",
        json={
            "orgID": org_id,
            "name": name,
            "description": DESCRIPTION,
            "retentionRules": [{"everySeconds": 7 * 86400}],
        },
    )
    r.raise_for_status()
    return r.json()


def _drop_tokens(http: httpx.Client, org_id: str, who: str) -> None:
    """Delete the tokens `create` made for `who` (a re-created attendee's old ones must stop working)."""
    auths = http.get("/api/v2/authorizations", params={"orgID": org_id}).json().get("authorizations") or []
    for auth in auths:
        if auth.get("description", "").startswith(f"{DESCRIPTION} {who} "):
            http.delete(f"/api/v2/authorizations/{auth['id']}")


# ---- the commands ---------------------------------------------------------------------------------------


def create(
    n: int,
    *,
    out_dir: Path | None = None,
    settings: Settings | None = None,
    token_dir: Path | None = None,
    first: int = 1,
    parallelism: int = 1,
    producer_bytes_per_s: int = PRODUCER_BYTES_PER_S,
    consumer_bytes_per_s: int = CONSUMER_BYTES_PER_S,
    own_flink: bool = False,
    flink_root: Path | None = None,
    flink_slots: int = 2,
    controller_mutations_per_s: float = CONTROLLER_MUTATIONS_PER_S,
) -> list[Attendee]:
    """Create attendees a<first>..: Kafka user, ACLs and quotas, topics, InfluxDB bucket and tokens, settings file.

    Running it again for an existing attendee gives them a new password and new tokens (a lost file).
    `out_dir` defaults to `default_out_dir(settings)`; `token_dir` to `out_dir/tokens`. `own_flink`: a Flink
    session cluster per attendee (`flink_slots` slots, under `flink_root`, default `<home>/workshop/flink`)."""
    from labkit import workshop_flink

    settings = settings or get_settings()
    _require_admin(settings)
    if own_flink:
        workshop_flink.require_root()
        flink_root = Path(flink_root or settings.home / "workshop" / "flink")
    from kafka.admin import UserScramCredentialUpsertion

    from labkit.stack.kafka import ensure_topics

    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    token_dir = Path(token_dir or out_dir / "tokens")
    token_dir.mkdir(parents=True, exist_ok=True)
    mechanism = _mechanism(settings)
    made = {a.name: a for a in attendees(settings)}
    admin = _admin(settings)
    try:
        with _influx(settings) as http:
            org_id = _org_id(http, settings.influx_org)
            for i in range(first, first + n):
                name = f"a{i:02d}"
                user, password = USER_PREFIX + name, secrets.token_urlsafe(18)
                say(f"attendee {name}: Kafka user {user}, ACLs on {name}.*, quotas; bucket; settings file")
                if mechanism is not None:
                    errors = admin.alter_user_scram_credentials(
                        [UserScramCredentialUpsertion(user, mechanism, password)]
                    )
                    if errors.get(user):
                        raise ServiceError(f"Kafka refused the SCRAM user {user}: {errors[user]}")
                created = admin.create_acls(_acls(user, f"{name}."))
                if created.get("failed"):
                    raise ServiceError(f"Kafka refused ACLs for {user}: {created['failed']}")
                _set_quota(
                    admin,
                    user,
                    {
                        "producer_byte_rate": producer_bytes_per_s,
                        "consumer_byte_rate": consumer_bytes_per_s,
                        "controller_mutation_rate": controller_mutations_per_s,
                    },
                )
                bucket = _bucket(http, org_id, f"{settings.influx_bucket}-{name}")
                _drop_tokens(http, org_id, name)
                write, read = (bucket_token(http, bucket, a, f"{DESCRIPTION} {name} {a}") for a in ("write", "read"))
                if own_flink:
                    cluster = workshop_flink.start(
                        workshop_flink.OwnFlink(name, flink_root), settings, write, slots=flink_slots
                    )
                    token_file, flink_url, python = cluster.token_file, cluster.rest_url, str(cluster.python)
                else:
                    token_file, flink_url = token_dir / f"{name}.write-token", settings.flink
                    python = settings.flink_python_executable
                    write_secret(token_file, write + "\n")
                # the attendee's two topics, created as the instructor (same names their settings derive)
                ns = settings.model_copy(update={"namespace": name})
                ensure_topics(settings.kafka, settings.model_copy(
                    update={"topic": ns.scoped(settings.topic), "dlq_topic": ns.scoped(settings.dlq_topic)}))  # fmt: skip
                path = out_dir / f"{name}.env"
                write_secret(path, _settings_file(settings, name, user, password, bucket["name"], write, read,
                                                  token_file, parallelism, flink_url, python))  # fmt: skip
                made[name] = Attendee(name, user, bucket["name"], str(path.resolve()), str(token_file.resolve()),
                                      str(flink_root) if own_flink else "")  # fmt: skip
                _save(settings, sorted(made.values(), key=lambda a: a.name))
    finally:
        admin.close()
    return [made[f"a{i:02d}"] for i in range(first, first + n)]


def _settings_file(
    s: Settings,
    name: str,
    user: str,
    password: str,
    bucket: str,
    write: str,
    read: str,
    token_file: Path,
    par: int,
    flink_url: str,
    python: str | None = None,
) -> str:
    lines = {
        "LABKIT_MODE": "external",
        "LABKIT_NAMESPACE": name,
        "LABKIT_KAFKA_BOOTSTRAP": s.kafka,
        "LABKIT_KAFKA_SECURITY_PROTOCOL": s.kafka_security_protocol,
        "LABKIT_KAFKA_REPLICATION_FACTOR": s.kafka_replication_factor,
        "LABKIT_PARTITIONS": s.partitions,
        "LABKIT_FLINK_REST_URL": flink_url,
        "LABKIT_FLINK_PARALLELISM": par,
        "LABKIT_INFLUX_URL": s.influx,
        "LABKIT_INFLUX_ORG": s.influx_org,
        "LABKIT_INFLUX_BUCKET": bucket,
        "LABKIT_INFLUX_WRITE_TOKEN": write,
        "LABKIT_INFLUX_READ_TOKEN": read,
        "LABKIT_FLINK_INFLUX_TOKEN_FILE": token_file.resolve(),
    }
    if s.kafka_bootstrap_for_flink:
        lines["LABKIT_KAFKA_BOOTSTRAP_FOR_FLINK"] = s.kafka_bootstrap_for_flink
    if s.influx_url_for_flink:
        lines["LABKIT_INFLUX_URL_FOR_FLINK"] = s.influx_url_for_flink
    if python:  # their own cluster's Python, or the shared cluster's
        lines["LABKIT_FLINK_PYTHON_EXECUTABLE"] = python
    if s.kafka_sasl_username:
        lines |= {"LABKIT_KAFKA_SASL_MECHANISM": s.kafka_sasl_mechanism, "LABKIT_KAFKA_SASL_USERNAME": user,
                  "LABKIT_KAFKA_SASL_PASSWORD": password}  # fmt: skip
    if s.kafka_ssl_ca_file:
        lines["LABKIT_KAFKA_SSL_CA_FILE"] = Path(s.kafka_ssl_ca_file).resolve()
    head = (
        f"# labkit workshop: attendee {name}. Holds their password and tokens: keep it 0600, hand it to {name} only.\n"
    )
    return head + "".join(f"{k}={v}\n" for k, v in lines.items())


def status(settings: Settings | None = None) -> pd.DataFrame:
    """One row per attendee: their Flink jobs and the lag of their pipeline's consumer group."""
    from labkit import kafka_info
    from labkit.jobs.control import Flink

    settings = settings or get_settings()
    shared = _shared_jobs(Flink(settings.flink), attendees(settings))
    rows = []
    for a in attendees(settings):
        try:
            jobs = Flink(_own(a).rest_url).jobs() if a.flink_root else shared
        except ServiceError:  # their cluster is down: the row says they run nothing
            jobs = []
        theirs = [j for j in jobs if j["name"].startswith(a.name + ".")]
        running = [j["name"] for j in theirs if j["state"] in LIVE]
        try:
            ns = settings.model_copy(update={"namespace": a.name})
            topic = ns.scoped(settings.topic)
            lag = int(kafka_info.lag(ns.pipeline_group(topic), topic, settings)["lag"].sum())
        except Exception:  # a topic deleted by the attendee: the row still lists them
            lag = None
        rows.append({"attendee": a.name, "kafka_user": a.kafka_user, "bucket": a.bucket, "running_jobs": running,
                     "jobs_total": len(theirs), "pipeline_lag": lag})  # fmt: skip
    return pd.DataFrame(
        rows, columns=["attendee", "kafka_user", "bucket", "running_jobs", "jobs_total", "pipeline_lag"]
    )


def _shared_jobs(flink, people: list[Attendee]) -> list[dict]:
    """The shared Flink's jobs; none when every attendee has a cluster of their own and there is no shared one."""
    try:
        return flink.jobs()
    except ServiceError:
        if people and all(a.flink_root for a in people):
            return []
        raise


def _own(a: Attendee):
    from labkit import workshop_flink

    return workshop_flink.OwnFlink(a.name, Path(a.flink_root))


def _group_ids(admin) -> list[str]:
    out = []
    for g in admin.list_groups():
        gid = g[0] if isinstance(g, tuple) else getattr(g, "group_id", g)
        out.append(gid["group_id"] if isinstance(gid, dict) else str(gid))
    return out


def _files(a: Attendee) -> list[Path]:
    """The files `create` wrote for `a`: the settings file and the write-token file. The token file is the
    recorded one or, for an attendee recorded before that, the one their settings file names, if it is the
    `aNN.write-token` that `create` writes (never some other file a hand-edited settings file points to)."""
    token = a.token_file
    if not token and Path(a.settings_file).is_file():
        from dotenv import dotenv_values

        named = dotenv_values(a.settings_file).get("LABKIT_FLINK_INFLUX_TOKEN_FILE") or ""
        token = named if Path(named).name == f"{a.name}.write-token" else ""
    return [Path(a.settings_file), *([Path(token)] if token else [])]


def teardown(settings: Settings | None = None, *, names: list[str] | None = None) -> list[str]:
    """Remove attendees (default: all): their jobs, topics, groups, ACLs, quotas, user, bucket, tokens and files."""
    from kafka.admin import UserScramCredentialDeletion

    from labkit.jobs.control import Flink

    settings = settings or get_settings()
    _require_admin(settings)
    people = [a for a in attendees(settings) if names is None or a.name in names]
    mechanism = _mechanism(settings)
    flink = Flink(settings.flink)
    admin = _admin(settings)
    try:
        # what the cluster holds, read once: each attendee's share is picked out by its prefix below
        jobs = [j for j in _shared_jobs(flink, people) if j["state"] in LIVE]
        topics, groups = admin.list_topics(), _group_ids(admin)
        with _influx(settings) as http:
            org_id = _org_id(http, settings.influx_org)
            for a in people:
                say(f"removing attendee {a.name}")
                prefix = a.name + "."
                if a.flink_root:  # their own cluster goes whole: jobs, folder, firewall rules, Unix user
                    from labkit import workshop_flink

                    workshop_flink.stop(_own(a))
                for j in jobs:
                    if j["name"].startswith(prefix):
                        flink.cancel(j["jid"])
                if theirs := [t for t in topics if t.startswith(prefix)]:
                    admin.delete_topics(theirs, timeout_ms=30_000)
                if theirs := [g for g in groups if g.startswith(prefix)]:
                    admin.delete_groups(theirs)
                admin.delete_acls(_acls(a.kafka_user, prefix))
                _set_quota(admin, a.kafka_user, None)
                if mechanism is not None:
                    admin.alter_user_scram_credentials([UserScramCredentialDeletion(a.kafka_user, mechanism)])
                _drop_tokens(http, org_id, a.name)
                found = http.get("/api/v2/buckets", params={"orgID": org_id, "name": a.bucket}).json()
                for b in found.get("buckets") or []:
                    http.delete(f"/api/v2/buckets/{b['id']}")
                for f in _files(a):
                    f.unlink(missing_ok=True)  # a symlink is removed itself, never what it points to
    finally:
        admin.close()
    gone = {a.name for a in people}
    _save(settings, [a for a in attendees(settings) if a.name not in gone])
    return sorted(gone)
