#!/bin/sh
# As the influxdb:2.7 image does: on the first start with DOCKER_INFLUXDB_INIT_MODE=setup, run the setup
# (user, org, bucket, admin token) on a private port, then start influxd for real.
set -eu
if [ "${DOCKER_INFLUXDB_INIT_MODE:-}" = setup ] && [ ! -s "$INFLUXD_BOLT_PATH" ]; then
  influxd --http-bind-address 127.0.0.1:9999 --reporting-disabled >/tmp/influxd-setup.log 2>&1 &
  pid=$!
  i=0
  until curl -fs http://127.0.0.1:9999/health >/dev/null; do
    i=$((i + 1)); [ $i -lt 120 ] || { cat /tmp/influxd-setup.log; exit 1; }; sleep 0.5
  done
  jq -n --arg u "$DOCKER_INFLUXDB_INIT_USERNAME" --arg p "$DOCKER_INFLUXDB_INIT_PASSWORD" \
    --arg o "$DOCKER_INFLUXDB_INIT_ORG" --arg b "$DOCKER_INFLUXDB_INIT_BUCKET" \
    --arg t "${DOCKER_INFLUXDB_INIT_ADMIN_TOKEN:-}" \
    '{username: $u, password: $p, org: $o, bucket: $b} + (if $t == "" then {} else {token: $t} end)' \
    | curl -fsS -o /dev/null -X POST -H 'Content-Type: application/json' --data @- http://127.0.0.1:9999/api/v2/setup
  kill "$pid"; wait "$pid" || true
  echo "influxdb: set up org $DOCKER_INFLUXDB_INIT_ORG, bucket $DOCKER_INFLUXDB_INIT_BUCKET"
fi
exec influxd "$@"
