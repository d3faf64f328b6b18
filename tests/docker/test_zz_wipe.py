"""Last (make test-docker runs it on its own): `labkit down --wipe` leaves no container, volume or network."""

import subprocess

import pytest

from tests.cli import LABKIT

pytestmark = pytest.mark.stack

PROJECT = "clickstream-lab"


def _left(kind: str) -> list[str]:
    r = subprocess.run(
        [
            "docker",
            kind,
            "ls",
            *(["-a"] if kind == "container" else []),
            "-q",
            "--filter",
            f"label=com.docker.compose.project={PROJECT}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return r.stdout.split()


def test_down_wipe_leaves_nothing_behind(stack):
    assert _left("container") and _left("volume"), "the stack should be up before this test"
    r = subprocess.run([LABKIT, "down", "--wipe"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert {k: _left(k) for k in ("container", "volume", "network")} == {"container": [], "volume": [], "network": []}
