"""InfluxDB: the local influxd process and onboarding (org, bucket, admin/write/read tokens)."""

from __future__ import annotations

import httpx

from labkit import credentials
from labkit.errors import ServiceError
from labkit.stack.local_service import LocalService
from labkit.stack.provision import influxdb as provision
from labkit.stack.readiness import HttpOk, InfluxBucket, WaitStrategy


class LocalInfluxDB(LocalService):
    name = "influxdb"
    port_settings = ("LABKIT_INFLUX_PORT",)

    @property
    def address(self) -> str:
        return self.settings.influx

    def prepare(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)

    def command(self) -> tuple[list[str], dict[str, str]]:
        s = self.settings
        return [
            str(provision.influxd_path()),
            f"--bolt-path={self.home / 'influxd.bolt'}",
            f"--engine-path={self.home / 'engine'}",
            f"--sqlite-path={self.home / 'influxd.sqlite'}",
            f"--http-bind-address={s.bind_host}:{s.influx_port}",
            "--ui-disabled",
            "--reporting-disabled",
            "--log-level=warn",
            "--storage-cache-max-memory-size=268435456",
        ], {"INFLUXD_CONFIG_PATH": str(self.home)}

    def readiness(self) -> WaitStrategy:
        return HttpOk(f"{self.address}/health")

    def after_ready(self) -> None:
        onboard(self.settings, self.creds)
        InfluxBucket(
            self.address, self.creds.influx_admin_token, self.settings.influx_org, self.settings.influx_bucket
        ).wait_until_ready(30, service=self.name)


def onboard(settings, creds: credentials.Credentials) -> None:
    """First run: create the org, bucket and admin token; then a write-only and a read-only token."""
    url = settings.influx
    with httpx.Client(base_url=url, timeout=10) as http:
        if http.get("/api/v2/setup").json().get("allowed"):
            r = http.post(
                "/api/v2/setup",
                json={
                    "username": creds.influx_username,
                    "password": creds.influx_password,
                    "org": settings.influx_org,
                    "bucket": settings.influx_bucket,
                    "token": creds.influx_admin_token,
                },
            )
            if r.status_code >= 300:
                raise ServiceError(f"InfluxDB onboarding failed: HTTP {r.status_code} {r.text[:200]}")
        auth = {"Authorization": f"Token {creds.influx_admin_token}"}
        r = http.get(
            "/api/v2/buckets", params={"org": settings.influx_org, "name": settings.influx_bucket}, headers=auth
        )
        if r.status_code == 401:
            raise ServiceError(
                "InfluxDB rejects the admin token stored in secrets.json (was the data folder replaced?).",
                "run `labkit down --wipe` then `labkit up` to start InfluxDB afresh",
            )
        buckets = r.json().get("buckets") or []
        if not buckets:
            org = http.get("/api/v2/orgs", params={"org": settings.influx_org}, headers=auth).json()["orgs"][0]
            bucket = http.post(
                "/api/v2/buckets",
                json={"orgID": org["id"], "name": settings.influx_bucket, "retentionRules": []},
                headers=auth,
            ).json()
        else:
            bucket = buckets[0]
        if creds.influx_write_token and creds.influx_read_token:
            return
        b = settings.influx_bucket
        creds.influx_write_token = bucket_token(http, bucket, "write", f"labkit: Flink job writes {b}", headers=auth)
        creds.influx_read_token = bucket_token(http, bucket, "read", f"labkit: notebooks read {b}", headers=auth)
        credentials.save(settings.home, creds)


def bucket_token(http: httpx.Client, bucket: dict, action: str, description: str, headers: dict | None = None) -> str:
    """A new token that may only `action` ("read" or "write") the one `bucket` (as InfluxDB returns buckets)."""
    org_id = bucket["orgID"]
    r = http.post(
        "/api/v2/authorizations",
        headers=headers,
        json={
            "orgID": org_id,
            "description": description,
            "permissions": [{"action": action, "resource": {"type": "buckets", "id": bucket["id"], "orgID": org_id}}],
        },
    )
    r.raise_for_status()
    return r.json()["token"]
