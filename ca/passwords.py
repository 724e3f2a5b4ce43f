"""Passwords come from a file or an interactive prompt — never from env vars or argv.

With no file and no terminal, a new password is generated and written 0600 under
`secrets/`, and the caller says where.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click

from ca.errors import PasswordError
from ca.keys.files import write_private_file


def read_password_file(path: Path, *, what: str) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PasswordError(f"password file for the {what} not found: {path}") from None
    except OSError as exc:
        raise PasswordError(
            f"cannot read the password file for the {what} {path}: {exc.strerror or exc}"
        ) from exc
    password = data.rstrip(b"\r\n")
    if not password:
        raise PasswordError(f"the password file for the {what} is empty: {path}")
    return password


def is_interactive() -> bool:
    return sys.stdin.isatty()


def prompt_password(*, what: str, new: bool) -> bytes:
    text = click.prompt(
        f"{'Choose a' if new else 'The'} password for the {what}",
        hide_input=True,
        confirmation_prompt=new,
        err=True,
    )
    if not text:
        raise PasswordError(f"the password for the {what} must not be empty")
    return str(text).encode()


def generate_password() -> bytes:
    return secrets.token_urlsafe(32).encode()


def obtain_password(
    file: Path | None, *, what: str, new: bool, generate_to: Path | None = None
) -> tuple[bytes, bool]:
    """Return (password, generated). A generated password has been written to `generate_to`."""
    if file is not None:
        return read_password_file(file, what=what), False
    if is_interactive():
        return prompt_password(what=what, new=new), False
    if new and generate_to is not None:
        password = generate_password()
        write_private_file(generate_to, password + b"\n")
        return password, True
    raise PasswordError(
        f"no password for the {what}: give a password file (--password-file) or run on a terminal"
    )
