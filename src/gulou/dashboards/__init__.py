"""Operators' Grafana dashboards, built in code with the Grafana Foundation SDK and pushed with grafana-client."""
