"""The lab's Java functions and its InfluxDB table connector (labkit/jobs/java): compiled with javac against
PyFlink's own jars, cached by source hash. The functions parse and validate each event once in the JVM (see
ParseClick.java); the connector (`labkit-influx`, registered in META-INF/services) writes the job's points."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from labkit.console import say
from labkit.errors import LabkitError
from labkit.paths import PACKAGE_DIR, cache_dir
from labkit.stack.provision.tools import require
from labkit.versions import FLINK

SOURCES = PACKAGE_DIR / "jobs" / "java"


def _sources() -> list[Path]:
    return sorted(SOURCES.rglob("*.java"))


def _resources() -> dict[str, Path]:
    """Files that go into the jar as they are (the table connector's service registration), by path in the jar."""
    return {
        p.relative_to(SOURCES).as_posix(): p for p in sorted(SOURCES.rglob("*")) if p.is_file() and p.suffix != ".java"
    }


def _key() -> str:
    h = hashlib.sha256(FLINK.encode())
    for src in [*_sources(), *_resources().values()]:
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()[:12]


def jar_path() -> Path:
    return cache_dir() / "udf" / _key() / "clickstream-udf.jar"


def is_provisioned() -> bool:
    return jar_path().is_file()


def provision() -> Path:
    from labkit.stack.provision.pyflink_dist import flink_home

    target = jar_path()
    if not target.is_file():
        say("compiling the lab's Java functions (javac)")
        compile_jar(_sources(), str(flink_home() / "lib" / "*"), target, resources=_resources())
    return target


def compile_jar(
    sources: list[Path],
    classpath: str,
    target: Path,
    *,
    release: str = "17",
    keep: Callable[[str], bool] | None = None,
    resources: dict[str, Path] | None = None,
) -> Path:
    """javac `sources` against `classpath` into the jar `target` (written atomically); `keep` filters which
    compiled classes (by their path in the jar) go in, and `resources` (path in the jar: file) are added as
    they are."""
    javac = require("javac")
    with tempfile.TemporaryDirectory() as tmp:
        r = subprocess.run(
            [javac, "--release", release, "-nowarn", "-cp", classpath, "-d", tmp, *map(str, sources)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            raise LabkitError(f"javac failed on {sources[0].parent}: {r.stderr.strip()[-800:]}")
        staging = target.with_suffix(".partial")
        staging.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as jar:
            jar.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: labkit\n\n")
            for cls in sorted(Path(tmp).rglob("*.class")):
                rel = cls.relative_to(tmp).as_posix()
                if keep is None or keep(rel):
                    jar.write(cls, rel)
            for rel, src in (resources or {}).items():
                jar.write(src, rel)
        shutil.move(staging, target)
    return target
