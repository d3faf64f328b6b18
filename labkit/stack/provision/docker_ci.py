"""The images CI builds in place of Docker Hub's (compose/ci/): same releases, same interface.

Each image's build context is assembled from what local provisioning already has (the Kafka jars from Maven
Central, influxd from the Go module proxy), so CI downloads nothing twice. Tags come from labkit.versions;
compose/ci/docker-compose.ci.yml names the same tags (tests/unit/test_compose.py checks).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from labkit.console import say
from labkit.paths import COMPOSE_DIR
from labkit.stack.provision import influxdb, kafka
from labkit.versions import FLINK, INFLUXDB, JAVA_MAJOR, KAFKA

CI_DIR = COMPOSE_DIR / "ci"
BASE = "labkit-ci/debian:bookworm"


def images() -> dict[str, str]:
    """Folder under compose/ci -> the tag it builds."""
    return {
        "jdk": f"labkit-ci/jdk:{JAVA_MAJOR}",
        "flink": f"labkit-ci/flink:{FLINK}-java{JAVA_MAJOR}",
        "kafka": f"labkit-ci/kafka:{KAFKA}",
        "influxdb": f"labkit-ci/influxdb:{INFLUXDB}",
    }


def _extra_files(name: str) -> dict[str, Path]:
    """What local provisioning has for an image, provisioned under the cache's lock: CI builds the images while
    `labkit up` may be provisioning the same components."""
    from labkit.stack.provision import provisioning_lock

    if name not in ("kafka", "influxdb"):
        return {}
    with provisioning_lock():
        return {"jars": kafka.provision()} if name == "kafka" else {"influxd": influxdb.provision()}


def build(name: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix=f"labkit-ci-{name}-") as tmp:
        ctx = Path(tmp) / "ctx"
        shutil.copytree(CI_DIR / name, ctx)
        for dest, src in _extra_files(name).items():
            (shutil.copytree if src.is_dir() else shutil.copy2)(src, ctx / dest)
        say(f"building {tag}")
        r = subprocess.run(["docker", "build", "-q", "-t", tag, str(ctx)], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"docker build {tag} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")


def main() -> None:
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode != 0:
        raise SystemExit(f"the base image {BASE} is missing: run scripts/docker-engine.sh")
    for name, tag in images().items():
        build(name, tag)  # docker's layer cache makes a rebuild of an unchanged image take seconds


if __name__ == "__main__":
    main()
