#!/bin/bash
# One-shot (compose service grafana-token): a token that can only read the bucket, for Grafana's datasource.
# The admin token stays with this script and InfluxDB; Grafana reads the new token from the grafana-secrets
# volume. The influx CLI takes its address, org and admin token from INFLUX_HOST, INFLUX_ORG, INFLUX_TOKEN
# (environment, never the command line).
set -euo pipefail

out="${GULOU_GRAFANA_TOKEN_FILE:-/run/gulou/influx-read-token}"
bucket="${GULOU_INFLUX_BUCKET:?}"
# The uid/gid the Grafana image runs as.
grafana_owner="${GULOU_GRAFANA_OWNER:-472:0}"

# A token from an earlier start that still answers is kept: Grafana needs no restart and no token piles up.
if [ -s "$out" ] && INFLUX_TOKEN="$(cat "$out")" influx bucket list --name "$bucket" --hide-headers >/dev/null 2>&1
then
    echo "grafana-token: the read-only token in $out is still valid"
    exit 0
fi

first_json_string() {  # KEY: the first "KEY": "value" in the JSON on stdin
    grep -o "\"$1\": *\"[^\"]*\"" | head -n 1 | sed 's/.*"\([^"]*\)"$/\1/'
}

bucket_id="$(influx bucket list --name "$bucket" --json | first_json_string id)"
if [ -z "$bucket_id" ]; then
    echo "grafana-token: bucket $bucket not found" >&2
    exit 1
fi
token="$(influx auth create --read-bucket "$bucket_id" --description "gulou grafana read-only ($bucket)" --json \
    | first_json_string token)"
if [ -z "$token" ]; then
    echo "grafana-token: influx auth create returned no token" >&2
    exit 1
fi
umask 077
printf '%s' "$token" > "$out.new"
chown "$grafana_owner" "$out.new"
chmod 0400 "$out.new"
mv "$out.new" "$out"
echo "grafana-token: wrote a read-only token for bucket $bucket ($bucket_id) to $out"
