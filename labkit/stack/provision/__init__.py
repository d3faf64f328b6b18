"""Provision the local stack's components into the user cache, per version, idempotently."""

from __future__ import annotations

from filelock import FileLock

from labkit.console import say
from labkit.paths import cache_dir
from labkit.stack.provision import flink, influxdb, kafka, loopback, udf


def provision_all() -> None:
    """Fetch or build everything local mode needs; finished parts are skipped.

    A file lock makes a second `labkit up` wait for the first one's build instead of racing it.
    """
    with provisioning_lock():
        _provision_all()


def provisioning_lock() -> FileLock:
    """The cache's one lock: whoever provisions (`labkit up`, CI's image builds) holds it, so two never build the
    same component into the same folder at once (CI starts its image builds beside `labkit up`)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    lock = FileLock(cache_dir() / "provision.lock")
    if lock.is_locked:
        say("another labkit is provisioning; waiting for it")
    return lock


COMPONENTS = (
    ("Kafka", kafka),
    ("Flink Kafka connector", flink),
    ("Java functions", udf),
    ("loopback gRPC for Python workers", loopback),
    ("InfluxDB", influxdb),
)


def _provision_all() -> None:
    for name, mod in COMPONENTS:
        if mod.is_provisioned():
            say(f"{name}: cached")
        else:
            mod.provision()


def is_provisioned() -> bool:
    return all(mod.is_provisioned() for _, mod in COMPONENTS)


def provision_client() -> None:
    """What submitting jobs needs in any mode: the connector and the Java functions for `flink run`."""
    if not flink.is_provisioned():
        flink.provision()
    if not udf.is_provisioned():
        udf.provision()
