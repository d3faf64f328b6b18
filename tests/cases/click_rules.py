"""One table of cases for the job's event rules, run through every reader of them: the job itself (Java,
`lab.clickstream.ParseClick`, in tests/pipeline/test_click_rules_in_job.py) and the Python readings of the same rules
(`exercises.checks._parse_click`, `kafka_info._event_ms`, in tests/unit/test_click_rules.py). A rule changed in
one reader and not the others fails one of them.

Each case: a name, the record's payload, its Kafka timestamp, and the verdict: "valid" (counted), "bad"
(dead-lettered) or "control" (an end marker: neither)."""

from __future__ import annotations

import json
from dataclasses import dataclass

DAY_MS = 86_400_000


@dataclass(frozen=True)
class Case:
    name: str
    payload: bytes
    kafka_ms: int
    verdict: str


def _click(ts: int, *, raw_utf8: bool = False, **over) -> bytes:
    """A click as JSON: `raw_utf8` writes text beyond ASCII as UTF-8 bytes, not as \\u escapes."""
    ev = {
        "user_id": "u_1",
        "session_id": "s_1",
        "url": "/cart",
        "http_method": "GET",
        "http_status": 200,
        "latency_ms": 120.5,
        "event_timestamp": ts,
        "country": "NL",
        "device": "desktop",
    }
    ev.update(over)
    return json.dumps({k: v for k, v in ev.items() if v is not ...}, ensure_ascii=not raw_utf8).encode()


def _marker(ts: object) -> bytes:
    return json.dumps({"event_type": "watermark", "event_timestamp": ts}).encode()


def cases(base_ms: int) -> list[Case]:
    """The table, for records sent around `base_ms` (event times relative to each record's Kafka time)."""
    k = base_ms
    c = [
        ("a plain click", _click(k - 1000), "valid"),
        ("event time equal to the Kafka time", _click(k), "valid"),
        ("event time 9 s ahead of the Kafka time", _click(k + 9_000), "valid"),
        ("event time 11 s ahead of the Kafka time", _click(k + 11_000), "bad"),
        ("event time 6 days behind", _click(k - 6 * DAY_MS), "valid"),
        ("event time 8 days behind", _click(k - 8 * DAY_MS), "bad"),
        ("event time as text", _click(k, event_timestamp=str(k)), "valid"),
        ("no user_id", _click(k, user_id=...), "bad"),
        ("empty session_id", _click(k, session_id=""), "bad"),
        ("url without a leading slash", _click(k, url="cart"), "bad"),
        ("an unknown HTTP method", _click(k, http_method="FETCH"), "bad"),
        ("status 99", _click(k, http_status=99), "bad"),
        ("status 600", _click(k, http_status=600), "bad"),
        ("status 404", _click(k, http_status=404), "valid"),
        ("status 200.5", _click(k, http_status=200.5), "bad"),
        ("negative latency", _click(k, latency_ms=-1), "bad"),
        ("user_id of 64 characters", _click(k, user_id="u" * 64), "valid"),
        ("user_id of 65 characters", _click(k, user_id="u" * 65), "bad"),
        ("url of 1024 characters", _click(k, url="/" + "a" * 1023), "valid"),
        ("url of 1025 characters", _click(k, url="/" + "a" * 1024), "bad"),
        ("country of 33 characters", _click(k, country="C" * 33), "bad"),
        ("no country and no device", _click(k, country=..., device=...), "valid"),
        ("truncated JSON", _click(k)[:-5], "bad"),
        ("a JSON array", b"[1, 2, 3]", "bad"),
        ("not UTF-8", b'{"user_id": "\xff\xfe"}', "bad"),
        # text beyond ASCII, and JSON laid out over lines: read as the generator's compact ASCII is
        ("text beyond ASCII in a field", _click(k, country="Österreich", url="/café", raw_utf8=True), "valid"),
        ("JSON across lines, with tabs", json.dumps(json.loads(_click(k)), indent="\t").encode(), "valid"),
        ("beyond ASCII, truncated", _click(k, country="Österreich", raw_utf8=True)[:-3], "bad"),
        ("empty", b"", "bad"),
        ("an end marker", _marker(k), "control"),
        # control messages are checked like events: one the job cannot trust is dead-lettered, never obeyed
        ("an end marker 20 s ahead (closes the last window)", _marker(k + 20_000), "control"),
        ("an end marker 30 s ahead", _marker(k + 30_000), "bad"),
        ("an end marker an hour ahead", _marker(k + 3_600_000), "bad"),
        ("an end marker 8 days old", _marker(k - 8 * DAY_MS), "bad"),
        ("an end marker without a time", json.dumps({"event_type": "watermark"}).encode(), "bad"),
        ("an end marker with a word for a time", _marker("soon"), "bad"),
        ("an end marker with a time in digits", _marker(str(k)), "control"),
    ]
    return [Case(name, payload, k, verdict) for name, payload, verdict in c]
