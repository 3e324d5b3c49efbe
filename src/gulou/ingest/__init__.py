"""Ingest: the collector (source → validate → sink, with accounting) and the disk spool in front of remote sinks."""
