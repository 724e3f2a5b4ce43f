"""SoftHSM2 tokens for tests: a token directory of its own per test, a fresh token in it.

SoftHSM reads `SOFTHSM2_CONF` when the module is initialised, so the fixture points it at
the test's directory (child processes inherit it) and finalises the module afterwards: the
next test's token directory is read afresh.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "1234-test-pin"
SO_PIN = "5678-test-so-pin"

SOFTHSM_UTIL = shutil.which("softhsm2-util")
MISSING = (
    "softhsm2-util not installed (apt-get install softhsm2); .ci/run installs it"
    if SOFTHSM_UTIL is None or not Path(MODULE).exists()
    else "python-pkcs11 not installed (pip install python-pkcs11)"
    if importlib.util.find_spec("pkcs11") is None
    else None
)
needs_softhsm = pytest.mark.skipif(MISSING is not None, reason=MISSING or "")


@dataclass(frozen=True)
class SoftHSMToken:
    label: str
    directory: Path
    pin_file: Path
    module: str = MODULE

    def uri(self, label: str) -> str:
        return f"pkcs11:token={self.label};object={label}"


def create_token(directory: Path, label: str, monkeypatch: pytest.MonkeyPatch) -> SoftHSMToken:
    """Initialise a token labelled `label` in `directory` and point SOFTHSM2_CONF at it."""
    tokens = directory / "tokens"
    tokens.mkdir(parents=True)
    conf = directory / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    assert SOFTHSM_UTIL is not None
    command = [SOFTHSM_UTIL, "--init-token", "--free", "--label", label]
    subprocess.run(
        [*command, "--so-pin", SO_PIN, "--pin", PIN],
        check=True,
        capture_output=True,
        env={**os.environ, "SOFTHSM2_CONF": str(conf)},
    )
    pin_file = directory / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)
    return SoftHSMToken(label, directory, pin_file)


def softhsm_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHSMToken]:
    """Body of the `softhsm` fixture (tests/conftest.py)."""
    if MISSING is not None:
        pytest.skip(MISSING)
    from ca.keys.pkcs11 import close_all

    close_all()
    yield create_token(tmp_path / "softhsm", "ledgerca-test", monkeypatch)
    close_all()
