"""Find the external tools provisioning and the local stack need, and say how to get a missing one."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

from labkit.errors import MissingToolError
from labkit.versions import JAVA_MAJOR


@dataclass(frozen=True)
class Tool:
    name: str
    purpose: str
    how_to_get: str


TOOLS = {
    "java": Tool(
        "java",
        f"runs Kafka and Flink (Java {JAVA_MAJOR}+)",
        "conda install -c conda-forge openjdk=17, or apt-get install openjdk-17-jre-headless",
    ),
    "javac": Tool(
        "javac",
        "compiles the lab's Java functions (a JDK, not only a JRE)",
        "conda install -c conda-forge openjdk=17, or apt-get install openjdk-17-jdk-headless",
    ),
    "mvn": Tool(
        "mvn", "fetches the Kafka and connector jars", "conda install -c conda-forge maven, or apt-get install maven"
    ),
    "go": Tool("go", "builds influxd", "conda install -c conda-forge go, or https://go.dev/doc/install"),
    "cargo": Tool("cargo", "builds libflux for influxd", "conda install -c conda-forge rust, or https://rustup.rs"),
    "pkg-config": Tool(
        "pkg-config",
        "links influxd against libflux",
        "conda install -c conda-forge pkg-config, or apt-get install pkg-config",
    ),
    "cc": Tool(
        "cc",
        "compiles influxd's C parts (cgo)",
        "conda install -c conda-forge c-compiler, or apt-get install build-essential",
    ),
}


def require(name: str) -> str:
    """Path of tool `name`, or a MissingToolError naming it and how to get it."""
    path = shutil.which(name)
    if path is None:
        tool = TOOLS[name]
        raise MissingToolError(f"`{name}` is not installed; labkit needs it: it {tool.purpose}.", tool.how_to_get)
    return path


def java_major(java: str | None = None) -> int:
    """The major version of the java on PATH (e.g. 17)."""
    java = java or require("java")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise MissingToolError(f"could not read the version of {java}: {out.strip()[:200]}", TOOLS["java"].how_to_get)
    major = int(m.group(1))
    return int(m.group(2)) if major == 1 and m.group(2) else major


def require_java() -> str:
    java = require("java")
    major = java_major(java)
    if major < JAVA_MAJOR:
        raise MissingToolError(
            f"`java` on PATH is Java {major}; Kafka 4 and Flink 2 need Java {JAVA_MAJOR} or newer.",
            TOOLS["java"].how_to_get,
        )
    return java
