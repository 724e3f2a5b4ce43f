"""The `[crl]` table of ca.toml and the URLs leaves and CRLs carry."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from ca.authority.initialize import InitOptions, validate
from ca.config import CAConfig, CRLSettings, load_config, save_config
from ca.crl.urls import idp_url, leaf_urls
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
        'renew_period = "10m"\nidp_url = "http://crl.example.test/ca.crl"\n'
        'insecure_address = ":8080"\npoll_interval = "250ms"\n',
    )
    crl = config.crl
    assert not crl.enabled and not crl.generate_on_revoke
    assert (crl.cache, crl.renew, crl.poll_seconds) == (
        timedelta(hours=1),
        timedelta(minutes=10),
        0.25,
    )
    assert (crl.idp_url, crl.insecure_address) == ("http://crl.example.test/ca.crl", ":8080")
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


def test_by_default_the_crl_is_complete_and_leaves_carry_no_distribution_point() -> None:
    # No IDP: the CRL covers every certificate of the issuer, with a CDP or without one.
    assert idp_url(config()) is None
    assert leaf_urls(config()) == ((), ())


def test_a_crl_url_goes_into_the_leaves_and_leaves_the_crl_complete() -> None:
    # The leaves issued before crl_url was set, and the CA's TLS certificate, stay covered.
    with_url = config(crl_url="http://crl.example.test/a.crl")
    assert leaf_urls(with_url)[0] == ("http://crl.example.test/a.crl",)
    assert idp_url(with_url) is None


def test_a_scoped_crl_puts_its_idp_url_into_the_leaves_as_well() -> None:
    scoped = config(crl=CRLSettings(idp_url="http://crl.example.test/a.crl"))
    assert idp_url(scoped) == "http://crl.example.test/a.crl"
    assert leaf_urls(scoped)[0] == ("http://crl.example.test/a.crl",)
    both = config(crl_url="http://crl/a.crl", crl=CRLSettings(idp_url="http://crl/a.crl"))
    assert (idp_url(both), leaf_urls(both)[0]) == ("http://crl/a.crl", ("http://crl/a.crl",))


def test_an_idp_url_other_than_the_leaves_crl_url_is_refused_at_load(tmp_path: Path) -> None:
    text = 'crl_url = "http://crl/a.crl"\n[crl]\nidp_url = "http://crl/b.crl"\n'
    with pytest.raises(ConfigError, match=r"crl.idp_url .* differs from crl_url .*\(error 44\)"):
        load(tmp_path, text)


def test_an_idp_url_must_be_an_absolute_url(tmp_path: Path) -> None:
    complaint = re.escape("crl.idp_url 'crl/b.crl' is not an absolute URL")
    with pytest.raises(ConfigError, match=complaint):
        load(tmp_path, '[crl]\nidp_url = "crl/b.crl"\n')


def test_leaves_carry_only_the_urls_the_operator_configured() -> None:
    assert leaf_urls(config()) == ((), ())
    assert leaf_urls(config(crl_url="http://c/crl", ocsp_url="http://o")) == (
        ("http://c/crl",),
        ("http://o",),
    )


def test_init_refuses_a_crl_url_that_is_not_an_http_or_ldap_url() -> None:
    options = InitOptions(
        name="Acme", dns_names=("ca.example.test",), address=":9443", crl_url="ca.example.test/crl"
    )
    with pytest.raises(
        ConfigError, match=re.escape("--crl-url 'ca.example.test/crl' is not an http://")
    ):
        validate(options)
