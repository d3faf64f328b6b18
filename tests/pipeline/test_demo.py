"""The README's first command, end to end: `labkit demo` runs the pipeline and reports exact accounts."""

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.stack


def test_labkit_demo_runs_the_pipeline_and_reports_exact_accounts(stack):
    labkit = str(Path(sys.executable).with_name("labkit"))
    r = subprocess.run([labkit, "demo", "-n", "20000"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for line in (
        "events produced",
        "windows written",
        "error rate",
        "EXACT: every event is accounted for",
        "where to look next",
    ):
        assert line in r.stdout
