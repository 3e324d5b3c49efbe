"""The alert workflow's HTTP API (FastAPI, OpenAPI at /openapi.json): alerts, actions, silences, work orders."""
