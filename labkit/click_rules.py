"""The job's event rules, read in Python: one port of `lab.clickstream.ParseClick` (labkit/jobs/java, which stays
authoritative: the job runs it) for everything labkit judges outside the job. Notebook 07's checkers compute their
reference from it, and `kafka_info` draws notebook 03's picture with it. One table of cases
(tests/cases/click_rules.py) runs through this module and through the job itself, so a rule changed in one place
and not the other fails a test. (Before, `kafka_info` had a reading of its own, and it drifted: it counted an
empty session id and a 33-character country as valid, and an event time given as digits in a string as bad.)"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_MAX_PAYLOAD = 16384
_MAX_LATENCY_MS = 600_000
_MAX_PAST_MS = 7 * 24 * 3600 * 1000
_MAX_FUTURE_MS = 3600 * 1000
_MAX_AHEAD_MS = 10_000
_MAX_MARKER_AHEAD_MS = 26_000  # ParseClick.MAX_MARKER_AHEAD_MS: a marker further ahead is dead-lettered
_YEAR_3000_MS = 32_503_680_000_000
_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}
_LONG = (-(2**63), 2**63 - 1)


class _Invalid(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    d: dict = {}
    for k, v in pairs:
        if k in d:  # ParseClick's STRICT_DUPLICATE_DETECTION
            raise _Invalid("duplicate JSON key")
        d[k] = v
    return d


def _no_constant(name: str) -> Any:
    raise _Invalid(f"{name} is not JSON")  # Jackson refuses NaN and Infinity; Python's json would take them


_JSON = json.JSONDecoder(object_pairs_hook=_no_duplicates, parse_constant=_no_constant)


def _java_trim(s: str) -> str:
    """Java's String.trim(): every character up to U+0020 at either end."""
    return s.strip("".join(chr(i) for i in range(33)))


def _scalar(v: Any) -> str | None:
    """ParseClick.scalar: the text of a scalar (numbers and booleans as text), None for null and containers."""
    if v is None or isinstance(v, (dict, list)):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        r = repr(v)  # Java's Double.toString differs in exponent notation only ("1.0E20" for 1e+20)
        if "e" in r:
            m, e = r.split("e")
            return f"{m if '.' in m else m + '.0'}E{int(e)}"
        return r
    return str(v)


def _java_number(v: Any) -> float | None:
    """ParseClick.number: a number, or a string holding one (Double.parseDouble, finite); None otherwise."""
    if v is None or isinstance(v, (bool, dict, list)):
        return None
    if isinstance(v, (int, float)):
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    t = _java_trim(v)
    if "_" in t or not t:
        return None
    if t[-1] in "fFdD" and not t.lower().endswith(("inf", "infinity")):
        t = t[:-1]
    try:
        # Java takes hexadecimal with a binary exponent ("0x1.8p1"); Python's float() takes none of it
        d = float.fromhex(t) if re.fullmatch(r"[+-]?0[xX][0-9a-fA-F.]+[pP][+-]?[0-9]+", t) else float(t)
    except ValueError:
        return None
    return d if math.isfinite(d) else None


def _java_long(v: Any) -> int | None:
    """ParseClick.epochMillis: an integer, a float cast to long (truncated, clamped), or a string holding a
    long; None otherwise."""
    if v is None or isinstance(v, (bool, dict, list)):
        return None
    if isinstance(v, int):
        return v if _LONG[0] <= v <= _LONG[1] else None
    if isinstance(v, float):
        if math.isnan(v):
            return 0
        return int(max(_LONG[0], min(_LONG[1], v))) if math.isfinite(v) else (_LONG[1] if v > 0 else _LONG[0])
    t = _java_trim(v)
    if not re.fullmatch(r"[+-]?[0-9]+", t):
        return None
    n = int(t)
    return n if _LONG[0] <= n <= _LONG[1] else None


def _chars(s: str) -> int:
    """Java's String.length(): UTF-16 code units."""
    return len(s.encode("utf-16-le", "surrogatepass")) // 2


def parse_click(payload: bytes | None, kafka_ms: int) -> tuple[str, int | None, tuple | None]:
    """ParseClick.doCheck in Python: ("valid", event ms, (url, status, session_id, user_id)), ("control",
    marker ms, None) for an end marker, ("bad", None, None) for anything the job dead-letters."""
    bad = ("bad", None, None)
    if payload is None or len(payload) == 0 or len(payload) > _MAX_PAYLOAD:
        return bad
    try:
        text = payload.decode("utf-8")
        root, _ = _JSON.raw_decode(text.lstrip(" \t\r\n"))  # Jackson ignores what follows the first value
    except (UnicodeDecodeError, ValueError, RecursionError):
        return bad
    if not isinstance(root, dict):
        return bad
    if _scalar(root.get("event_type")) == "watermark":
        marker = _java_long(root.get("event_timestamp"))
        if marker is None or marker < 0 or not kafka_ms - _MAX_PAST_MS <= marker <= kafka_ms + _MAX_MARKER_AHEAD_MS:
            return bad
        return ("control", marker, None)
    user, session, url = (_scalar(root.get(k)) for k in ("user_id", "session_id", "url"))
    method = _scalar(root.get("http_method"))
    status = _java_number(root.get("http_status"))
    latency = _java_number(root.get("latency_ms"))
    ts = _java_long(root.get("event_timestamp"))
    country, device = _scalar(root.get("country")), _scalar(root.get("device"))
    ok = (
        bool(user)
        and bool(session)
        and url is not None
        and url.startswith("/")
        and method in _METHODS
        and status is not None
        and -(2**31) <= status <= 2**31 - 1
        and status == round(status)
        and 100 <= int(status) <= 599
        and latency is not None
        and 0 <= latency <= _MAX_LATENCY_MS
        and ts is not None
        and ts >= 0
        and ts >= kafka_ms - _MAX_PAST_MS
        and ts <= _YEAR_3000_MS
        and ts <= kafka_ms + _MAX_FUTURE_MS
        and ts <= kafka_ms + _MAX_AHEAD_MS
        and _chars(user) <= 64  # type: ignore[arg-type]
        and _chars(session) <= 64  # type: ignore[arg-type]
        and _chars(url) <= 1024  # type: ignore[arg-type]
        and (country is None or _chars(country) <= 32)
        and (device is None or _chars(device) <= 32)
    )
    return ("valid", ts, (url, int(status), session, user)) if ok else bad  # type: ignore[arg-type]


def event_ms(payload: bytes | None, kafka_ms: int) -> float:
    """The event time of a record the job counts as a valid click, NaN for anything else (dead letters and end
    markers)."""
    verdict, ts, _ = parse_click(payload, kafka_ms)
    return float(ts) if verdict == "valid" and ts is not None else float("nan")
