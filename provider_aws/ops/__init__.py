"""Operating the provider: structured logs, Prometheus metrics, the access line, the HTTP health endpoint."""
