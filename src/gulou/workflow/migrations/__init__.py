"""Alembic migrations of the workflow schema (the same revisions for SQLite and PostgreSQL)."""
