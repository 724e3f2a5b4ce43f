"""The `[crl]` table of ca.toml and the URLs leaves and CRLs carry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ca.config import CAConfig, CRLSettings, load_config, save_config
from ca.crl.urls import default_crl_url, idp_url, leaf_urls
from ca.errors import ConfigError
from ca.home import Home

BASE = 'name = "Acme"\ndns_names = ["ca.example.test"]\naddress = ":9443"\ndatabase = "x"\n'


def load(tmp_path: Path, text: str) -> CAConfig:
    home = Home(tmp_path)
    home.config_dir.mkdir(parents=True, exist_ok=True)
    home.config_file.write_text(BASE + text)
    return load_config(home)


def test_without_a_crl_table_the_step_ca_defaults_apply(tmp_path: Path) -> None:
    crl = load(tmp_path, "").crl
    assert crl.enabled and crl.generate_on_revoke
    assert crl.cache == timedelta(hours=24)
    assert crl.renew == timedelta(hours=16)
    assert crl.poll_seconds == 1.0
    assert crl.idp_url == crl.insecure_address == ""


def test_every_key_can_be_set(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        'crl_url = "http://crl.example.test/ca.crl"\nocsp_url = "http://ocsp.example.test"\n'
        '[crl]\nenabled = false\ngenerate_on_revoke = false\ncache_duration = "1h"\n'
        'renew_period = "10m"\nidp_url = "http://x/crl"\ninsecure_address = ":8080"\n'
        'poll_interval = "250ms"\n',
    )
    crl = config.crl
    assert not crl.enabled and not crl.generate_on_revoke
    assert (crl.cache, crl.renew, crl.poll_seconds) == (
        timedelta(hours=1),
        timedelta(minutes=10),
        0.25,
    )
    assert (crl.idp_url, crl.insecure_address) == ("http://x/crl", ":8080")
    assert config.crl_url == "http://crl.example.test/ca.crl"
    assert config.ocsp_url == "http://ocsp.example.test"


@pytest.mark.parametrize(
    ("table", "complaint"),
    [
        ('cache_duration = "0s"', "crl.cache_duration must be positive"),
        ('cache_duration = "soon"', "crl.cache_duration"),
        ('renew_period = "25h"', "at most crl.cache_duration"),
        ('renew_period = "-1h"', "must be positive"),
        ('poll_interval = "0s"', "crl.poll_interval must be positive"),
        ('insecure_address = "8080"', "is not HOST:PORT"),
        ('cache_seconds = "1h"', "unknown key crl.cache_seconds"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_load(
    tmp_path: Path, table: str, complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        load(tmp_path, f"[crl]\n{table}\n")


@pytest.mark.parametrize(
    "line", ['crl_url = "crl.example.test/ca.crl"', 'ocsp_url = "ldap://ocsp.example.test"']
)
def test_leaf_urls_must_be_absolute_urls_of_a_usable_scheme(tmp_path: Path, line: str) -> None:
    with pytest.raises(ConfigError, match="is not an absolute URL"):
        load(tmp_path, line + "\n")


def test_a_saved_config_loads_back_equal(tmp_path: Path) -> None:
    home = Home(tmp_path)
    home.config_dir.mkdir()
    config = CAConfig(
        name="Acme",
        dns_names=("ca.example.test",),
        address=":9443",
        database="sqlite:///db/ledger.sqlite",
        crl_url="http://crl.example.test/ca.crl",
        crl=CRLSettings(cache_duration="12h", insecure_address="127.0.0.1:8080"),
    )
    save_config(home.config_file, config)
    assert load_config(home) == config


def config(**kwargs: object) -> CAConfig:
    fields: dict[str, object] = {
        "name": "Acme",
        "dns_names": ("ca.example.test", "10.0.0.1"),
        "address": ":9443",
        "database": "x",
    }
    fields.update(kwargs)
    return CAConfig(**fields)  # type: ignore[arg-type]


def test_the_default_crl_url_is_the_first_dns_name_with_the_listen_port() -> None:
    assert default_crl_url(config()) == "https://ca.example.test:9443/1.0/crl"
    assert default_crl_url(config(address="0.0.0.0:443")) == "https://ca.example.test/1.0/crl"
    assert default_crl_url(config(dns_names=("::1",))) == "https://[::1]:9443/1.0/crl"


def test_the_idp_is_idp_url_else_the_leaves_crl_url_else_the_default() -> None:
    # OpenSSL refuses a CRL whose IDP differs from the leaf's CDP: by default they match.
    assert idp_url(config()) == "https://ca.example.test:9443/1.0/crl"
    assert idp_url(config(crl_url="http://crl.example.test/a.crl")) == (
        "http://crl.example.test/a.crl"
    )
    both = config(crl_url="http://crl/a.crl", crl=CRLSettings(idp_url="http://idp/b.crl"))
    assert idp_url(both) == "http://idp/b.crl"


def test_leaves_carry_only_the_urls_the_operator_configured() -> None:
    assert leaf_urls(config()) == ((), ())
    assert leaf_urls(config(crl_url="http://c/crl", ocsp_url="http://o")) == (
        ("http://c/crl",),
        ("http://o",),
    )
