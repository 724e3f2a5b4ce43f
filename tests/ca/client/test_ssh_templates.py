"""`ledgerca ssh config --write` writes templates as step does: a snippet replaces its own
marked block and leaves the rest of the file alone, a prepend-line goes first once, a file
is replaced; a template for a relative path or of an unknown type is refused."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from ca.client.ssh_templates import BEGIN, END, RenderedTemplate, read_templates, write_template
from ca.errors import ConfigError


def test_a_snippet_is_appended_once_and_replaced_in_place(tmp_path: Path) -> None:
    config = tmp_path / "sshd_config"
    config.write_text("Port 22\nMatch User foo\n\tX11Forwarding no")
    write_template(RenderedTemplate("s", "snippet", config, "Match all\n\tHostKey /a\n"))
    write_template(RenderedTemplate("s", "snippet", config, "Match all\n\tHostKey /b\n"))
    assert config.read_text() == (
        f"Port 22\nMatch User foo\n\tX11Forwarding no\n{BEGIN}\nMatch all\n\tHostKey /b\n{END}\n"
    )


def test_a_prepend_line_goes_first_once_and_a_file_is_replaced(tmp_path: Path) -> None:
    includes = tmp_path / "ssh" / "includes"
    includes.parent.mkdir()
    includes.write_text('Include "/other/ssh/config"\nInclude "/step/ssh/config"\n')
    write_template(RenderedTemplate("i", "prepend-line", includes, 'Include "/step/ssh/config"'))
    assert includes.read_text() == 'Include "/step/ssh/config"\nInclude "/other/ssh/config"\n'
    known = tmp_path / "ssh" / "known_hosts"
    known.write_text("old\n")
    write_template(RenderedTemplate("k", "file", known, "@cert-authority * key\n"))
    assert known.read_text() == "@cert-authority * key\n"


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"name": "x", "type": "directory", "path": "/tmp/x"}, "unknown type"),
        ({"name": "x", "type": "file", "path": "ssh/config"}, "relative path"),
        ({"name": "x", "type": "file", "path": "/tmp/x", "content": "%%%"}, "undecodable"),
    ],
)
def test_templates_the_client_cannot_place_are_refused(entry: dict[str, str], words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        read_templates({"userTemplates": [entry]}, "user")


def test_home_relative_paths_are_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    content = base64.b64encode(b"Host *\n").decode()
    entry = {"name": "c", "type": "snippet", "path": "~/.ssh/config", "content": content}
    (template,) = read_templates({"userTemplates": [entry]}, "user")
    assert template.path == tmp_path / ".ssh" / "config"
