"""The Python readings of the job's event rules agree with the shared table of cases (tests/cases/click_rules.py),
which tests/pipeline/test_click_rules_in_job.py runs through the job itself."""

import math

import pytest

from labkit import kafka_info
from labkit.exercises.checks import _parse_click
from tests.cases.click_rules import cases

BASE_MS = 1_790_000_000_000
CASES = cases(BASE_MS)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_python_readers_follow_the_table(case):
    verdict, ts, _ = _parse_click(case.payload, case.kafka_ms)
    assert verdict == case.verdict, (case.name, verdict)
    event_ms = kafka_info._event_ms(case.payload, case.kafka_ms)
    assert (not math.isnan(event_ms)) == (case.verdict == "valid"), (case.name, event_ms)
    if case.verdict == "valid":
        assert event_ms == ts
