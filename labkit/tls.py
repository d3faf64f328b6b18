"""One TLS context for labkit's own HTTP calls (Flink's REST API, readiness probes).

httpx builds a new SSLContext for every call made without a client, loading the CA bundle each time: ~35 ms of
CPU per call, which a poll loop (a job's state, the TaskManagers, a service coming up) repeats thousands of times in
a test run and dozens per notebook cell. A context made once and passed as `verify` costs that once; it is httpx's
own default (certifi's bundle), so what is trusted does not change."""

from __future__ import annotations

import functools
import ssl

import certifi


@functools.cache
def tls() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())
