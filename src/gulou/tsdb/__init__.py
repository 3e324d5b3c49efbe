"""The time-series layer: storage records, line protocol and the writer boundary, below ingest and rules."""
