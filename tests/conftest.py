"""The shared harness is a plugin: fixtures and helpers live in `tests/support`."""

pytest_plugins = ["support.plugin"]
