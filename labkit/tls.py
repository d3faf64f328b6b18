"""One TLS context for labkit's own HTTP calls (Flink's REST API, readiness probes).

httpx builds a new SSLContext for every call made without a client, loading the CA bundle each time: ~25 ms of
CPU per call, which a poll loop (a job's state, the TaskManagers, a service coming up) repeats thousands of times in
a test run and dozens per notebook cell. A context made once by httpx itself (`create_ssl_context`: certifi's bundle,
or SSL_CERT_FILE / SSL_CERT_DIR when set) and passed as `verify` costs that once, and trusts what httpx's default
trusts."""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()
