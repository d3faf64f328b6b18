"""The README's first command, end to end: `labkit demo` runs the pipeline and reports exact accounts."""

import subprocess

import pytest

from tests.cli import LABKIT

pytestmark = pytest.mark.stack


def test_labkit_demo_runs_the_pipeline_and_reports_exact_accounts(stack):
    r = subprocess.run([LABKIT, "demo", "-n", "20000"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in (
        "events produced",
        "windows written",
        "error rate",
        "EXACT: every event is accounted for",
        "where to look next",
    ):
        assert line in r.stdout
