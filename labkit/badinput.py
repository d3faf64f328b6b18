"""A corpus of bad messages, one generator per class, each with the DLQ reason the job must give it.

Shared by the producer (malformed_fraction), the tests and the docs' bad-input table, so the classes,
their examples and the expected reasons are defined once.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

REQUIRED = ("user_id", "session_id", "url", "http_method", "http_status", "latency_ms", "event_timestamp")
DAY_MS = 86_400_000


@dataclass(frozen=True)
class BadClass:
    name: str
    reason: str  # the exact reason the job writes to the DLQ
    description: str
    make: Callable[[random.Random, dict], bytes | None]
    in_mix: bool = True  # part of the producer's malformed_fraction (huge payloads only in the bad-input test)


def _dump(d: object) -> bytes:
    return json.dumps(d, separators=(",", ":")).encode()


def _without(field: str) -> Callable[[random.Random, dict], bytes]:
    return lambda rng, ev: _dump({k: v for k, v in ev.items() if k != field})


def _with(field: str, value) -> Callable[[random.Random, dict], bytes]:
    return lambda rng, ev: _dump({**ev, field: value(rng, ev) if callable(value) else value})


def _nested(depth: int) -> dict:
    d: dict = {"x": 1}
    for _ in range(depth):
        d = {"n": d}
    return d


CLASSES: list[BadClass] = [
    BadClass(
        "truncated_json",
        "malformed JSON",
        "a valid event cut off mid-way",
        lambda rng, ev: _dump(ev)[: rng.randint(5, 60)],
    ),
    BadClass("not_json", "malformed JSON", "plain text, not JSON", lambda rng, ev: b"GET /index.html HTTP/1.1 200"),
    BadClass(
        "not_an_object",
        "not a JSON object",
        "valid JSON, but an array or a scalar",
        lambda rng, ev: rng.choice([b"[1,2,3]", b"42", b'"hello"', b"true"]),
    ),
    BadClass("missing_user_id", "missing field: user_id", "user_id absent", _without("user_id")),
    BadClass("missing_http_status", "missing field: http_status", "http_status absent", _without("http_status")),
    BadClass(
        "missing_event_timestamp",
        "missing field: event_timestamp",
        "event_timestamp absent",
        _without("event_timestamp"),
    ),
    BadClass("wrong_type_status", "http_status must be an integer", "http_status is text", _with("http_status", "OK")),
    BadClass("wrong_type_user", "user_id must be a string", "user_id is an object", _with("user_id", {"id": 7})),
    BadClass(
        "status_out_of_range",
        "http_status out of range (100-599)",
        "an impossible status code",
        lambda rng, ev: _dump({**ev, "http_status": rng.choice([0, 99, 600, 999, -1])}),
    ),
    BadClass(
        "negative_latency",
        "latency_ms must be a number between 0 and 600000",
        "latency below zero",
        _with("latency_ms", -12.5),
    ),
    BadClass(
        "non_numeric_latency",
        "latency_ms must be a number between 0 and 600000",
        "latency is text",
        _with("latency_ms", "fast"),
    ),
    BadClass(
        "bad_method",
        "http_method must be one of GET POST PUT PATCH DELETE HEAD OPTIONS",
        "an unknown HTTP method",
        _with("http_method", "FETCH"),
    ),
    BadClass(
        "timestamp_far_past",
        "event_timestamp too far in the past",
        "an event from 2001",
        _with("event_timestamp", 1_000_000_000_000),
    ),
    BadClass(
        "timestamp_far_future",
        "event_timestamp too far in the future",
        "an event two days ahead",
        lambda rng, ev: _dump({**ev, "event_timestamp": ev["event_timestamp"] + 2 * DAY_MS}),
    ),
    BadClass(
        "timestamp_not_a_number",
        "event_timestamp must be epoch milliseconds",
        "a date string",
        _with("event_timestamp", "2026-11-28T10:00:00Z"),
    ),
    BadClass(
        "oversized",
        "oversized payload (> 16384 bytes)",
        "a 20 kB referrer",
        _with("referrer", lambda rng, ev: "https://example.com/?q=" + "x" * 20_000),
    ),
    BadClass(
        "invalid_utf8",
        "invalid UTF-8",
        "bytes that are not UTF-8 inside a string",
        lambda rng, ev: _dump(ev).replace(b'"url":"', b'"url":"\xff\xfe', 1),
    ),
    BadClass("empty", "empty message", "a zero-length value", lambda rng, ev: b""),
    BadClass("null_value", "null value", "a Kafka record without a value (tombstone)", lambda rng, ev: None),
    BadClass(
        "deeply_nested",
        "url must be a string starting with /",
        "url is an object nested 200 deep",
        _with("url", lambda rng, ev: _nested(200)),
    ),
    BadClass(
        "huge_array",
        "session_id must be a string",
        "session_id is an array of 3,000 numbers",
        _with("session_id", lambda rng, ev: list(range(3000))),
    ),
]

CLASSES += [
    BadClass(
        "non_integer_status",
        "http_status must be an integer",
        "a status with a fraction (200.5); it was counted as 200 before",
        _with("http_status", 200.5),
    ),
    BadClass(
        "duplicate_key",
        "duplicate JSON key",
        "the same field twice (which one would count?)",
        lambda rng, ev: _dump(ev)[:-1] + b',"http_status":500}',
    ),
    BadClass(
        "long_user_id",
        "user_id longer than 64 characters",
        "a 200-character user_id",
        _with("user_id", lambda rng, ev: "u_" + "x" * 198),
    ),
    BadClass(
        "long_url",
        "url longer than 1024 characters",
        "a 2,000-character URL (unbounded tag values)",
        _with("url", lambda rng, ev: "/search/" + "q" * 2000),
    ),
    BadClass(
        "timestamp_ahead",
        "event_timestamp ahead of the record's Kafka timestamp (> 10 s)",
        "an event time 30 s after its record was sent: untrustworthy, and it would run its partition ahead",
        lambda rng, ev: _dump({**ev, "event_timestamp": ev["event_timestamp"] + 30_000}),
    ),
    BadClass(
        "huge_payload",
        "oversized payload (> 16384 bytes)",
        "a 900 kB message: its dead letter is truncated so it fits the DLQ topic",
        _with("referrer", lambda rng, ev: "https://example.com/?q=" + "x" * 900_000),
        in_mix=False,
    ),
]
MIX = [c for c in CLASSES if c.in_mix]  # what the producer's malformed_fraction draws from
BY_NAME = {c.name: c for c in CLASSES}
