"""The HTTP API: step-ca's paths, bodies and error shape, served at `/` and `/1.0`."""
