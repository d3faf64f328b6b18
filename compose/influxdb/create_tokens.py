"""One-shot, after InfluxDB's own setup: least-privilege tokens, written to the shared secrets volume.

The Flink job gets a token that can only write the lab's bucket; Grafana and the notebooks one that can only
read it. Runs in the lab's Flink image (its Python has influxdb-client), so it needs nothing from the
InfluxDB image but the HTTP API: the same script runs on the official image and on CI's.
"""

import os
import sys
import time
from pathlib import Path

from influxdb_client import InfluxDBClient
from influxdb_client.domain.authorization import Authorization
from influxdb_client.domain.permission import Permission
from influxdb_client.domain.permission_resource import PermissionResource

OUT = Path(os.environ.get("SECRETS_DIR", "/secrets"))
URL = os.environ.get("INFLUXDB_URL", "http://influxdb:8086")
ORG = os.environ["INFLUXDB_ORG"]
BUCKET = os.environ["INFLUXDB_BUCKET"]


def main() -> int:
    files = {"write": OUT / "influx-write.token", "read": OUT / "influx-read.token"}
    if all(f.exists() and f.stat().st_size for f in files.values()):
        print("influxdb-init: tokens exist already")
        return 0
    with InfluxDBClient(url=URL, token=os.environ["INFLUXDB_ADMIN_TOKEN"], org=ORG, timeout=10_000) as client:
        for _ in range(60):  # the service is healthy before it starts, but be patient with a slow disk
            bucket = client.buckets_api().find_bucket_by_name(BUCKET)
            if bucket:
                break
            time.sleep(1)
        else:
            print(f"influxdb-init: bucket {BUCKET!r} not found in org {ORG!r}", file=sys.stderr)
            return 1
        for action, f in files.items():
            perm = Permission(
                action=action, resource=PermissionResource(type="buckets", id=bucket.id, org_id=bucket.org_id)
            )
            auth = client.authorizations_api().create_authorization(
                authorization=Authorization(
                    org_id=bucket.org_id, permissions=[perm], description=f"labkit: {action} {BUCKET} only"
                )
            )
            tmp = f.with_suffix(".tmp")
            tmp.write_text(auth.token)
            # Readable by the users the services run as (flink, grafana) inside the volume; never on the host.
            tmp.chmod(0o444)
            tmp.replace(f)
    print(f"influxdb-init: write and read tokens for bucket {BUCKET} in {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
