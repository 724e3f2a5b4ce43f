"""`crl_findings`: pkilint's CRL linter (its `lint_crl` command, run in this process)."""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import warnings
from pathlib import Path

import pytest

SEVERITY = "WARNING"
"""Findings at this severity and above count: warnings and errors, not notices."""


def crl_findings(der: bytes, *, kind: str = "CRL", profile: str = "PKIX") -> list[str]:
    """`lint_crl lint -t KIND -p PROFILE -s WARNING` on a DER CRL: one line per finding.

    `kind` is CRL, or ARL for a CRL of CA certificates (the root's); `profile` PKIX (RFC
    5280) or BR (the CA/Browser Forum's: validity and reason-code limits as well).
    Skips the test, saying how to install it, when pkilint is not importable."""
    lint_crl = pytest.importorskip(
        "pkilint.bin.lint_crl", reason="pkilint is not installed: pip install -e '.[test]'"
    )
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "crl.der"
        path.write_bytes(der)
        out = io.StringIO()
        args = ["lint", "-t", kind, "-p", profile, "-s", SEVERITY, "-f", "JSON", str(path)]
        # lint_crl opens the file with argparse.FileType and never closes it: the
        # ResourceWarning comes when main() returns and drops it, and is not ours.
        with contextlib.redirect_stdout(out), warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            lint_crl.main(args)
    report = json.loads(out.getvalue())
    return [
        f"{finding['severity']} {finding['code']} at {result['node_path']}: {finding['message']}"
        for result in report["results"]
        for finding in result["finding_descriptions"]
    ]
