"""Writing `/ssh/config` templates to disk, as step writes them (`templates.Output.Write`):

* `file`: the whole file, replaced atomically;
* `snippet`: a block between a begin and an end marker line, replaced where it is, or
  appended at the end of the file (the rest of the file is left as it was);
* `prepend-line`: the line first in the file, any other copy of it removed.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ca.errors import ConfigError
from ca.keys.files import write_public_file

__all__ = ["RenderedTemplate", "read_templates", "write_template"]

BEGIN = "# ledgerca: begin (managed by `ledgerca ssh config --write`)"
END = "# ledgerca: end"
KINDS = ("file", "snippet", "prepend-line")


@dataclass(frozen=True)
class RenderedTemplate:
    name: str
    type: str
    path: Path
    content: str


def read_templates(answer: dict[str, Any], kind: str) -> list[RenderedTemplate]:
    """The `userTemplates` or `hostTemplates` of a `/ssh/config` answer, checked: known
    types, absolute paths (after `~`), text content."""
    templates = []
    for entry in answer.get(f"{kind}Templates") or []:
        if not isinstance(entry, dict):
            raise ConfigError("the CA sent a template that is not an object")
        name, type_, path = (str(entry.get(k, "")) for k in ("name", "type", "path"))
        if type_ not in KINDS:
            raise ConfigError(f"the CA sent template {name!r} of unknown type {type_!r}")
        where = Path(path).expanduser()
        if not where.is_absolute():
            raise ConfigError(f"the CA sent template {name!r} for a relative path {path!r}")
        try:
            content = base64.b64decode(str(entry.get("content", "")), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"the CA sent template {name!r} with undecodable content") from None
        templates.append(RenderedTemplate(name, type_, where, content))
    return templates


def write_template(template: RenderedTemplate) -> None:
    path = template.path
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    content = template.content if template.content.endswith("\n") else template.content + "\n"
    if template.type == "file":
        write_public_file(path, content.encode())
        return
    try:
        old = path.read_text()
    except FileNotFoundError:
        old = ""
    if template.type == "snippet":
        new = _with_snippet(old, content)
    else:
        kept = [line for line in old.splitlines(keepends=True) if line.strip() != content.strip()]
        new = content + "".join(kept)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _with_snippet(old: str, content: str) -> str:
    block = f"{BEGIN}\n{content}{END}\n"
    lines = old.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == END]
    if starts and ends and ends[-1] > starts[0]:
        return "".join(lines[: starts[0]]) + block + "".join(lines[ends[-1] + 1 :])
    if old and not old.endswith("\n"):
        old += "\n"
    return old + block
