"""Readiness checks ("wait strategies"), one abstraction reused by every service and backend.

A check answers "is this service really usable?" with a short reason when it is not; `wait_until_ready`
polls it (tenacity) until it passes or the timeout ends.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass

import httpx
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from labkit.errors import ServiceError
from labkit.tls import tls


@dataclass
class Check:
    ok: bool
    detail: str = ""


class WaitStrategy(ABC):
    """How to tell that one service is ready."""

    description: str = "ready"

    @abstractmethod
    def check(self) -> Check: ...

    def safe_check(self) -> Check:
        try:
            return self.check()
        except Exception as e:  # every failure mode of a probe means "not ready yet"
            return Check(False, f"{type(e).__name__}: {e}"[:300])

    def wait_until_ready(self, timeout: float, *, service: str, interval: float = 0.5, alive=None) -> None:
        """Poll until ready; `alive()` returning False (the process died) stops waiting at once."""
        last = Check(False, "not checked")

        def attempt() -> bool:
            nonlocal last
            if alive is not None and not alive():
                raise ServiceError(f"{service} exited while starting.", f"see `labkit logs {service}`")
            last = self.safe_check()
            return last.ok

        try:
            Retrying(
                stop=stop_after_delay(timeout), wait=wait_fixed(interval), retry=retry_if_result(lambda ok: not ok)
            )(attempt)
        except RetryError:
            raise ServiceError(
                f"{service} was not {self.description} after {timeout:.0f}s: {last.detail}",
                f"see `labkit logs {service}`",
            ) from None


class PortOpen(WaitStrategy):
    description = "accepting connections"

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def check(self) -> Check:
        with socket.create_connection((self.host, self.port), timeout=1):
            return Check(True)


class HttpOk(WaitStrategy):
    description = "answering HTTP"

    def __init__(self, url: str, predicate=lambda r: r.status_code == 200, headers: dict | None = None) -> None:
        self.url, self.predicate, self.headers = url, predicate, headers or {}

    def check(self) -> Check:
        r = httpx.get(self.url, timeout=2, headers=self.headers, verify=tls())
        return Check(bool(self.predicate(r)), f"HTTP {r.status_code} from {self.url}")


class KafkaMetadata(WaitStrategy):
    description = "answering metadata requests"

    def __init__(self, bootstrap: str, settings=None) -> None:
        self.bootstrap = bootstrap
        self.settings = settings  # external clusters: security settings, and a diagnosis when it fails

    def check(self) -> Check:
        from kafka import KafkaAdminClient

        config = {"bootstrap_servers": self.bootstrap}
        if self.settings is not None:
            from labkit.kafka_clients import diagnose, python_config

            if problem := diagnose(self.settings, bootstrap=self.bootstrap, timeout_s=3):
                return Check(False, str(problem))
            config = python_config(self.settings, bootstrap=self.bootstrap)
        admin = KafkaAdminClient(**config, request_timeout_ms=3000, client_id="labkit-ready")
        try:
            brokers = admin.describe_cluster().get("brokers", [])
            return Check(bool(brokers), f"{len(brokers)} broker(s)")
        finally:
            admin.close()


class FlinkSlots(WaitStrategy):
    description = "showing a TaskManager with free slots"

    def __init__(self, rest_url: str) -> None:
        self.rest_url = rest_url

    def check(self) -> Check:
        ov = httpx.get(f"{self.rest_url}/overview", timeout=2, verify=tls()).json()
        ok = ov.get("taskmanagers", 0) >= 1 and ov.get("slots-total", 0) >= 1
        return Check(ok, f"{ov.get('taskmanagers', 0)} TaskManager(s), {ov.get('slots-available', 0)} free slot(s)")


class InfluxBucket(WaitStrategy):
    description = "healthy with its bucket"

    def __init__(self, url: str, token: str, org: str, bucket: str) -> None:
        self.url, self.token, self.org, self.bucket = url, token, org, bucket

    def check(self) -> Check:
        health = httpx.get(f"{self.url}/health", timeout=2, verify=tls())
        if health.status_code != 200:
            return Check(False, f"/health answered {health.status_code}")
        r = httpx.get(
            f"{self.url}/api/v2/buckets",
            params={"org": self.org, "name": self.bucket},
            headers={"Authorization": f"Token {self.token}"},
            timeout=2,
            verify=tls(),
        )
        found = r.status_code == 200 and bool(r.json().get("buckets"))
        return Check(found, f"bucket {self.bucket!r} {'found' if found else f'missing (HTTP {r.status_code})'}")
