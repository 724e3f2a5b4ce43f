"""`needs_binary`: skip a test when a program it drives is not installed, saying how to get it."""

from __future__ import annotations

import shutil

import pytest


def needs_binary(name: str, package: str) -> pytest.MarkDecorator:
    """Skip unless `name` is on PATH; the reason names the Debian `package` to install."""
    return pytest.mark.skipif(
        shutil.which(name) is None,
        reason=f"{name} not installed (apt-get install {package}); .ci/run installs it",
    )


OPENSSL = shutil.which("openssl")
CURL = shutil.which("curl")
needs_openssl = needs_binary("openssl", "openssl")
needs_curl = needs_binary("curl", "curl")
