"""Ingest: MQTT collectors, sinks (embedded store, InfluxDB), disk spool and accounting."""
