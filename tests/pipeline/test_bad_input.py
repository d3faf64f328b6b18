"""Every bad-input class, mixed into valid traffic, lands in the DLQ with its specific reason; the job stays
up and the valid counts stay exact."""

import json
import random
from collections import Counter

import pytest

from labkit import badinput
from labkit.events import EventGenerator
from labkit.produce import produce
from labkit.verify import dead_letters, verify

pytestmark = pytest.mark.stack


class _Mixed(EventGenerator):
    """Valid traffic with every bad class injected `per_class` times at random positions."""

    def __init__(self, per_class: int, total: int, **kw):
        super().__init__(**kw)
        rng = random.Random(99)
        slots = rng.sample(range(100, total), per_class * len(badinput.CLASSES))
        self._inject = {pos: badinput.CLASSES[i % len(badinput.CLASSES)] for i, pos in enumerate(slots)}

    def __next__(self):
        e = super().__next__()
        bad = self._inject.get(self.count)
        if bad is not None and e.kind == "valid":
            e.value, e.kind, e.reason, e.status = bad.make(self.rng, json.loads(e.value)), "malformed", bad.reason, 0
        return e


def test_every_bad_class_gets_its_reason_and_valid_counts_stay_exact(settings, pipeline):
    topic, job = pipeline
    total, per_class = 20_000, 10
    import time

    gen = _Mixed(per_class, total, seed=5, rate=500, start_ms=int(time.time() * 1000) - total * 2)
    summary = produce(total, topic=topic, generator=gen, close_windows=True, settings=settings)
    acc = verify(summary.ledger, settings=settings, wait_s=120)
    assert acc.exact, f"{acc}\n{acc.mismatches}\nmissing: {acc.dlq_expected - acc.dlq_found}"
    expected = Counter()
    for c in badinput.CLASSES:
        expected[c.reason] += per_class
    found = dead_letters(topic, settings.dlq_topic_for(topic), settings)
    assert found == expected
    assert job.state == "RUNNING"
