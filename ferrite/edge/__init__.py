"""The HTTP edge: quart-trio app, hypercorn serving, Prometheus metrics."""
