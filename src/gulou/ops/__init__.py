"""Operating the services: health verdicts, Prometheus metrics and ``/healthz``, logging setup."""
