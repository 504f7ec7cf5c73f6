"""Talking to Grafana: the HTTP client, the versions API, one module per resource kind."""
