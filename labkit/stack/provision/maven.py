"""Fetch jars from Maven Central with `mvn` (the one Java registry client every lab machine has)."""

from __future__ import annotations

import shutil
from pathlib import Path

from labkit.stack.provision._run import run_logged
from labkit.stack.provision.tools import require

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>labkit</groupId><artifactId>{name}</artifactId><version>1</version><packaging>pom</packaging>
  <dependencies>
{deps}
  </dependencies>
</project>
"""


def fetch(name: str, artifacts: list[str], dest: Path, *, transitive: bool = True) -> Path:
    """Copy `artifacts` ("group:artifact:version") and, if `transitive`, their runtime deps into `dest`.

    Fetches into a staging folder and renames at the end, so `dest` exists only when complete.
    """
    if (dest / ".complete").exists():
        return dest
    require("mvn")
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    deps = "\n".join(
        "    <dependency><groupId>{}</groupId><artifactId>{}</artifactId><version>{}</version></dependency>".format(
            *a.split(":")
        )
        for a in artifacts
    )
    (staging / "pom.xml").write_text(_POM.format(name=name, deps=deps))
    run_logged(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(staging / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={staging / 'jars'}",
            f"-DexcludeTransitive={'false' if transitive else 'true'}",
        ],
        what=f"fetch {name} jars from Maven Central",
        log=dest.parent / f"{dest.name}.log",
    )
    (staging / ".complete").touch()
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest
