"""`config/ca.toml` is read field by field: each wrong key or value is one line naming it.

A config that TOML accepts can still be nonsense: a string where an array belongs (which
used to become an array of characters), `"no"` for a boolean (which used to count as true),
an unknown TLS version, a misspelt key. Each is refused at load, by `serve` before it binds
and by a SIGHUP reload (tests/integration/test_reload.py), with the file and the key named.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support.ca_server import cli_env

from ca.config import load_config
from ca.errors import ConfigError
from ca.home import Home

BASE = {
    "name": '"Acme"',
    "dns_names": '["ca.example.test"]',
    "address": '":9443"',
    "database": '"sqlite:///db/ledger.sqlite"',
}


def _write(tmp_path: Path, top: dict[str, str] | None = None, tables: str = "") -> Home:
    lines = {**BASE, **(top or {})}
    home = Home(tmp_path)
    home.config_dir.mkdir(parents=True, exist_ok=True)
    body = "".join(f"{key} = {value}\n" for key, value in lines.items() if value)
    home.config_file.write_text(body + tables)
    return home


def _problems(home: Home) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load_config(home)
    lines = refused.value.message.splitlines()
    assert all(line.startswith(f"{home.config_file}: ") for line in lines)
    return [line.removeprefix(f"{home.config_file}: ") for line in lines]


def test_a_valid_config_loads_with_its_types(tmp_path: Path) -> None:
    config = load_config(_write(tmp_path, tables='[crl]\nenabled = false\npoll_interval = "2s"\n'))
    assert config.dns_names == ("ca.example.test",)
    assert config.crl.enabled is False
    assert config.crl.poll_seconds == 2.0


def test_ssh_bastions_load_in_order_and_survive_a_round_trip(tmp_path: Path) -> None:
    tables = (
        "[[ssh_bastions]]\nhosts = ['*.internal']\nhostname = 'jump.internal'\nport = 2222\n"
        "[[ssh_bastions]]\nhosts = ['10.1.*', 'lab?']\nhostname = '10.1.0.1'\nuser = 'gw'\n"
    )
    config = load_config(_write(tmp_path, tables=tables))
    assert [(b.hosts, b.hostname, b.port, b.user) for b in config.ssh_bastions] == [
        (("*.internal",), "jump.internal", 2222, ""),
        (("10.1.*", "lab?"), "10.1.0.1", 0, "gw"),
    ]
    Home(tmp_path).config_file.write_text(config.to_toml())
    assert load_config(Home(tmp_path)) == config


@pytest.mark.parametrize(
    ("top", "tables", "problem"),
    [
        ({"dns_names": '"ca.example"'}, "",
         "dns_names must be an array of strings, not 'ca.example'"),
        ({"dns_names": "[]"}, "", "dns_names must be a non-empty array of names"),
        ({}, '[crl]\nenabled = "no"\n', "crl.enabled must be true or false, not 'no'"),
        ({}, '[tls]\nmin_version = "banana"\n', "tls.min_version must be 1.2 or 1.3, not 'banana'"),
        ({}, '[tls]\nmin_version = "1.3"\nmax_version = "1.2"\n',
         "tls.min_version is above tls.max_version"),
        ({"log_levle": '"debug"'}, "", "unknown key log_levle (did you mean log_level?)"),
        ({}, "[checkpoint]\nbogus = 1\n", "unknown key checkpoint.bogus"),
        ({}, '[checkpoint]\nevery = "lots"\n', "checkpoint.every must be an integer, not 'lots'"),
        ({}, "[checkpoint]\nevery = true\n", "checkpoint.every must be an integer, not true"),
        ({"tls_cert_lifetime": '"a day"'}, "", "tls_cert_lifetime: invalid duration 'a day'"),
        ({"tls_cert_lifetime": '"5s"'}, "", "tls_cert_lifetime must be at least 10s, not 5s"),
        ({"address": '"nowhere"'}, "", "address must be HOST:PORT, not 'nowhere'"),
        ({"address": ""}, "", "address is missing"),
        ({"ssh_hosts_require_auth": '"yes"'}, "", "ssh_hosts_require_auth must be true or false"),
        ({"tls": "1"}, "", "tls must be a table ([tls])"),
        ({}, "[pkcs11]\nmodule = 5\n", "pkcs11.module must be a string, not int 5"),
        ({}, "[ssh_bastions]\nhostname = 'j'\n",
         "ssh_bastions must be an array of tables ([[ssh_bastions]])"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\n", "ssh_bastions[0].hostname is missing"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\nhost = 'x'\n",
         "unknown key ssh_bastions[0].host (did you mean ssh_bastions[0].hosts?)"),
        ({}, "[[ssh_bastions]]\nhosts = []\nhostname = 'j'\n",
         "ssh_bastions[0].hosts must be a non-empty array of host patterns"),
        ({}, "[[ssh_bastions]]\nhosts = ['a b']\nhostname = 'j'\n",
         "ssh_bastions[0].hosts must be a non-empty array of host patterns"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = '-oProxyCommand=x'\n",
         "ssh_bastions[0].hostname must be a DNS name or IP address, not '-oProxyCommand=x'"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\nport = 70000\n",
         "ssh_bastions[0].port must be between 1 and 65535, not 70000"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\nport = '22'\n",
         "ssh_bastions[0].port must be an integer, not '22'"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\nuser = 'a b'\n",
         "ssh_bastions[0].user 'a b' is not a login name"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\ncmd = \"nc\\n%h\"\n",
         "ssh_bastions[0].cmd must be one line of printable text"),
        ({}, "[[ssh_bastions]]\nhosts = ['*']\nhostname = 'j'\nflags = 'other-host'\n",
         "ssh_bastions[0].flags must be ssh options, starting with '-'"),
    ],
)  # fmt: skip
def test_each_bad_value_is_one_line_naming_the_key(
    tmp_path: Path, top: dict[str, str], tables: str, problem: str
) -> None:
    (line,) = _problems(_write(tmp_path, top, tables))
    assert line.startswith(problem)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    home = _write(tmp_path, {"log_level": "3"}, '[crl]\nenabled = "no"\n[tls]\nextra = 1\n')
    assert sorted(_problems(home)) == [
        "crl.enabled must be true or false, not 'no'",
        "log_level must be a string, not int 3",
        "unknown key tls.extra",
    ]


def test_serve_refuses_to_start_on_a_bad_config(tmp_path: Path) -> None:
    home = _write(tmp_path, tables='[crl]\nenabled = "no"\n')
    result = subprocess.run(
        [sys.executable, "-m", "ca", "--home", str(home.path), "serve"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, env=cli_env(), timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"ledgerca: error: {home.config_file}: crl.enabled must be true or false, not 'no'"
    )
