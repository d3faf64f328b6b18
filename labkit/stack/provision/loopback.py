"""The TaskManager's gRPC servers for Python workers, bound to loopback.

PyFlink 2.2 ships Beam's server factory, which chooses a loopback address for each gRPC server it starts for
the Python workers (control, data, state, logging, provisioning) but binds the port on every interface: a
running job listened on a dozen ports reachable from the network. labkit compiles its own implementation of
that one class (loopback/.../ServerFactory.java: binds the address it advertises) into a small jar that comes
first in the lab's Flink lib folder, next to flink-python itself (the documented way to deploy PyFlink), so
the TaskManager loads it instead of the bundled one.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from labkit.console import say
from labkit.paths import cache_dir
from labkit.versions import FLINK

SOURCE = Path(__file__).resolve().parent / "loopback" / "org" / "apache" / "beam" / "sdk" / "fn" / "server"
CLASS = "org/apache/beam/sdk/fn/server/ServerFactory$InetSocketAddressServerFactory.class"
JAR_NAME = "0-labkit-grpc-loopback.jar"  # sorts before every other jar: first on the classpath


def python_jar() -> Path:
    from labkit.stack.provision.pyflink_dist import flink_home

    return next((flink_home() / "opt").glob("flink-python-*.jar"))


def _key() -> str:
    h = hashlib.sha256(FLINK.encode())
    for src in sorted(SOURCE.glob("*.java")):
        h.update(src.read_bytes())
    return h.hexdigest()[:12]


def jar_path() -> Path:
    return cache_dir() / "grpc-loopback" / _key() / JAR_NAME


def is_provisioned() -> bool:
    return jar_path().is_file()


def provision() -> Path:
    from labkit.stack.provision.udf import compile_jar

    target = jar_path()
    if not target.is_file():
        say("compiling the loopback gRPC server factory for Python workers (javac)")
        compile_jar(
            sorted(SOURCE.glob("*.java")), str(python_jar()), target, release="11", keep=lambda rel: rel == CLASS
        )
    return target
