"""Gulou Smart Brain IoT pipeline."""

__version__ = "0.1.0"
