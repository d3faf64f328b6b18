#!/bin/sh
# One-shot: least-privilege tokens after InfluxDB's own setup. The Flink job gets a token that can only
# write the bucket; Grafana and notebooks one that can only read it. Written to the shared secrets volume.
set -eu
[ -s /secrets/influx-write.token ] && [ -s /secrets/influx-read.token ] && exit 0
BUCKET_ID=$(influx bucket list --host http://influxdb:8086 --token "$INFLUXDB_ADMIN_TOKEN" --org "$INFLUXDB_ORG" \
  --name "$INFLUXDB_BUCKET" --hide-headers | cut -f1)
mk() { influx auth create --host http://influxdb:8086 --token "$INFLUXDB_ADMIN_TOKEN" --org "$INFLUXDB_ORG" \
  "$1" "$BUCKET_ID" --description "$2" --hide-headers | cut -f3; }
umask 077
mk --write-bucket "labkit: Flink job writes" > /secrets/influx-write.token
mk --read-bucket "labkit: Grafana and notebooks read" > /secrets/influx-read.token
chmod 0444 /secrets/influx-*.token  # readable by the grafana and flink users inside the volume only
