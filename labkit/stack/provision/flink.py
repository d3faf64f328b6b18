"""Flink standalone cluster from the pip-installed PyFlink, plus the Kafka SQL connector.

The cluster runs PyFlink's bundled distribution (bin/, lib/, opt/) with a lab-owned lib folder:
PyFlink's jars are linked in next to the connector, so the cluster and the `flink run` client
both see the connector without per-job flags, as in the compose image.
"""

from __future__ import annotations

from pathlib import Path

from labkit.paths import cache_dir
from labkit.stack.provision import maven
from labkit.stack.provision.pyflink_dist import flink_home  # noqa: F401  (re-exported: callers import it from here)
from labkit.versions import FLINK_KAFKA_CONNECTOR


def connector_jar(version: str = FLINK_KAFKA_CONNECTOR) -> Path:
    return cache_dir() / "flink-connector" / version / "jars" / f"flink-sql-connector-kafka-{version}.jar"


def is_provisioned() -> bool:
    return connector_jar().is_file()


def provision(version: str = FLINK_KAFKA_CONNECTOR) -> Path:
    flink_home()
    maven.fetch(
        f"flink-connector-{version}",
        [f"org.apache.flink:flink-sql-connector-kafka:{version}"],
        connector_jar(version).parent.parent,
        transitive=False,  # the sql-connector jar is shaded: everything it needs is inside
    )
    return connector_jar(version)


def lib_dir(home: Path) -> Path:
    """The lab's Flink lib folder under `home`: PyFlink's jars plus the connector and the lab's Java
    functions, as symlinks."""
    lib = home / "flink" / "lib"
    lib.mkdir(parents=True, exist_ok=True)
    wanted = {p.name: p for p in (flink_home() / "lib").glob("*.jar")}
    wanted[connector_jar().name] = connector_jar()
    from labkit.stack.provision import udf

    wanted["clickstream-udf.jar"] = udf.jar_path()
    from labkit.stack.provision import loopback

    # flink-python on the TaskManager's own classpath, behind the loopback gRPC patch that precedes it
    wanted[loopback.python_jar().name] = loopback.python_jar()
    wanted[loopback.JAR_NAME] = loopback.jar_path()
    for link in lib.iterdir():
        if link.name not in wanted or link.resolve() != wanted[link.name].resolve():
            link.unlink()
    for name, src in wanted.items():
        if not (lib / name).exists():
            (lib / name).symlink_to(src)
    return lib
