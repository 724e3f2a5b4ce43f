"""Text for an operator's terminal, safe when it carries what clients put in the ledger.

Subjects, SANs, key ids, revocation reasons, admin names and request ids come from clients.
Printed raw, an escape sequence among them can rewrite the terminal (hide a line, fake a
"revoked:" entry) and a newline can forge a whole line of `audit show`. Every line the CLI
prints from ledger data goes through `say`, which shows each non-printable character as a
Python-style escape (`\\x1b`, `\\n`, `\\u202e`) and leaves everything else as it was.
JSON output needs none of this: `json.dumps` already escapes control characters.
"""

from __future__ import annotations

import click


def printable(text: str) -> str:
    """`text` with every character that is not printable (or a plain space) escaped."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def _escape(ch: str) -> str:
    code = ord(ch)
    if ch == "\n":
        return "\\n"
    if ch == "\t":
        return "\\t"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def say(line: str, *, err: bool = False) -> None:
    """Print one line (its own newlines are shown escaped, never obeyed)."""
    click.echo(printable(line), err=err)
