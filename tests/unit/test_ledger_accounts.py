"""The ledger's accounts, against a count made here from the events themselves: `add` and `add_event` are the
producer's hot path (plain dict updates, the window computed once), and must count exactly, refused sends taken out
included."""

from __future__ import annotations

from collections import Counter

import pytest

from labkit.events import EventGenerator
from labkit.ledger import Ledger


def _expected(events, refused):
    """Status counts per window, late per window, malformed per reason and the detail rows, counted plainly."""
    on_time, late, bad, rows = Counter(), Counter(), Counter(), Counter()
    for e, sign in [(e, 1) for e in events] + [(e, -1) for e in refused]:
        w = (e.event_ms // 10_000 + 1) * 10_000
        if e.kind == "valid":
            on_time[(w, e.status)] += sign
            rows[(w, e.status, e.url, e.user, e.session, e.latency)] += sign
        elif e.kind == "late":
            late[w] += sign
        else:
            bad[e.reason] += sign
    return on_time, late, bad, rows


@pytest.mark.parametrize("seed", [3, 11])
def test_the_ledger_counts_every_event_as_a_plain_count_does(seed):
    gen = EventGenerator(seed=seed, rate=50, late_fraction=0.05, malformed_fraction=0.05)  # late after 45 s
    events = [next(gen) for _ in range(5_000)]
    refused = events[100::97]  # sends the broker refused, and one of each kind at least
    refused += [
        next(e for e in events[100:] if e.kind == k and e not in refused) for k in ("valid", "late", "malformed")
    ]
    led = Ledger("t")
    for e in events:
        led.add_event(e)
    for e in refused:
        led.add_event(e, sign=-1)
    on_time, late, bad, rows = _expected(events, refused)
    assert {k: n for k, n in led.on_time.items() if n} == {k: n for k, n in on_time.items() if n}
    assert {k: n for k, n in led.late.items() if n} == {k: n for k, n in late.items() if n}
    assert {k: n for k, n in led.malformed.items() if n} == {k: n for k, n in bad.items() if n}
    assert led.failed == len(refused)
    kept = Counter()
    for w, status, url, user, session, latency, sign in led.detail._rows:
        kept[(w, status, url, user, session, latency)] += sign
    assert {k: n for k, n in kept.items() if n} == {k: n for k, n in rows.items() if n}
    timed = [e for e in events if e.kind != "malformed"]
    assert led.first_event_ms == min(e.event_ms for e in timed)
    assert led.last_event_ms == max(e.event_ms for e in timed)
    assert (led.first_record_ms, led.last_record_ms) == (events[0].timestamp_ms, events[-1].timestamp_ms)


def test_a_ledger_started_by_another_clients_count_still_learns_its_record_times():
    """`add` without a Kafka timestamp (another client's run) leaves the record times unknown: the first event
    with one must set them."""
    e = next(e for e in EventGenerator(seed=5) if e.kind == "valid")
    led = Ledger("t")
    led.add("valid", e.event_ms - 5, 200, "")
    led.add_event(e)
    assert led.first_record_ms == led.last_record_ms == e.timestamp_ms
    assert led.first_event_ms == e.event_ms - 5 and led.last_event_ms == e.event_ms
