#!/bin/bash
# Runs once, after the influxdb image's setup created the org, bucket and admin token: map the bucket to
# an InfluxQL database/retention policy (DBRP) of the same name, so Grafana's InfluxQL queries reach it.
set -euo pipefail

bucket="${DOCKER_INFLUXDB_INIT_BUCKET:?}"
org="${DOCKER_INFLUXDB_INIT_ORG:?}"
bucket_id="${DOCKER_INFLUXDB_INIT_BUCKET_ID:-}"
if [ -z "$bucket_id" ]; then
    bucket_id="$(influx bucket list --org "$org" --name "$bucket" --hide-headers | cut -f1)"
fi

if influx v1 dbrp list --org "$org" --db "$bucket" --hide-headers 2>/dev/null | grep -q .; then
    echo "dbrp for $bucket exists"
    exit 0
fi
influx v1 dbrp create --org "$org" --db "$bucket" --rp autogen --bucket-id "$bucket_id" --default
echo "dbrp $bucket/autogen -> bucket $bucket ($bucket_id)"
