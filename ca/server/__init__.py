"""Serving the API over TLS with Hypercorn: contexts, workers, the CA's own certificate."""
