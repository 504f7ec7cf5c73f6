"""relaywatch's benchmark suite: build, push and query cost, each measured against a baseline
in the same run. `python -m benchmarks` runs it and writes docs/benchmarks.md (see __main__.py).

Modules: build (provision build against the import floor), push (against a naive upload
script, through the Grafana emulator), query_cost (generated dashboards and rules against
the source document's panels, on a real Prometheus), slo_window (the SLO period window,
derived from recorded rates against raw counters); common, project, history, prometheus
and grafana_refresh are their shared parts.
"""
