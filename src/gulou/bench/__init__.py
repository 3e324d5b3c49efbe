"""Benchmarks: a fast MQTT load generator and the ingest benchmark that prints figures."""
