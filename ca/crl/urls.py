"""Where CRLs (and OCSP) are found: the URLs leaves carry and the one the CRL names itself.

OpenSSL (through 3.x) takes a CRL whose Issuing Distribution Point names a URI as covering
only certificates whose CRL Distribution Point matches it: a leaf without a CDP is then
refused with "different CRL scope" (openssl/openssl#23325, smallstep/certificates#2250).
So when leaves carry `crl_url`, the IDP defaults to that same URL.
"""

from __future__ import annotations

from ca.config import CAConfig

__all__ = ["default_crl_url", "idp_url", "leaf_urls"]


def default_crl_url(config: CAConfig) -> str:
    """`https://<first DNS name>[:port]/1.0/crl`, the port left out when it is 443."""
    host = config.dns_names[0] if config.dns_names else "localhost"
    if ":" in host:
        host = f"[{host}]"
    port = config.address.rpartition(":")[2]
    suffix = "" if port in ("", "443") else f":{port}"
    return f"https://{host}{suffix}/1.0/crl"


def idp_url(config: CAConfig) -> str:
    """The URI in the CRL's Issuing Distribution Point: `crl.idp_url`, else `crl_url`,
    else the CA's own `/1.0/crl`."""
    return config.crl.idp_url or config.crl_url or default_crl_url(config)


def leaf_urls(config: CAConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(CRL distribution points, OCSP responders) for the leaves the CA issues.

    Only what the operator configured (`crl_url`, `ocsp_url`): step-ca adds neither by
    default, and a URL nobody serves makes strict relying parties fail hard.
    """
    crl = (config.crl_url,) if config.crl_url else ()
    ocsp = (config.ocsp_url,) if config.ocsp_url else ()
    return crl, ocsp
